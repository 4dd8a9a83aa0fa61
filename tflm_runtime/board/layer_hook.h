/* Per-layer timing hook. In per-layer mode the model sources are compiled with
 * `-include layer_hook.h -DMODEL_LAYER_HOOK(index)=board_layer_mark(index)`: generated code that
 * calls MODEL_LAYER_HOOK(k) after its k-th kernel then records the tick counter there. */
#ifndef BOARD_LAYER_HOOK_H
#define BOARD_LAYER_HOOK_H

void board_layer_mark(int index);

#endif
