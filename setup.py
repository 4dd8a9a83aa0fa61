"""unas: neural architecture search for microcontrollers, from search to int8 C code."""
from setuptools import find_packages, setup

# Versions seen working together on Python 3.11 (see README "Versions").
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "tf_keras==2.21.0",
    "tensorflow-model-optimization==0.8.1",
    "tflite-micro==0.dev20261023182759",
    "numpy==2.4.6",
    "networkx==3.6.1",
    "scipy==1.17.1",
    "pyyaml==6.0.3",
    "tqdm==4.70.1",
    "matplotlib==3.11.2",
    "scikit-learn==1.9.1",
    "ray==2.60.0",
    "pillow==13.0.0",
]

setup(
    name="unas",
    version="0.1.0",
    description="Multi-objective NAS for microcontrollers: search, resource model, int8 export, "
    "TFLM measurement and a TinyEngine-style C code generator",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["unas", "unas.*", "search_spaces", "search_spaces.*",
                                    "tflm_runtime", "tflm_runtime.*"]),
    package_data={"tflm_runtime": ["codegen/c/*.c", "codegen/c/*.h", "board/*.ld", "board/*.c",
                                   "board/*.s", "board/*.h"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": ["pytest==9.0.3", "hypothesis==6.155.2", "import-linter==2.17"]},
)
