/* What the benchmark harness needs from the place it runs: the emulated board (board_platform.c,
 * semihosting + CMSDK timer) or the host (host_platform.c, stdio). */
#ifndef BOARD_PLATFORM_H
#define BOARD_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* Opens the input file ("inputs.bin" in the working directory); 0 on success. */
int platform_open_inputs(void);
/* Reads up to n bytes of the input file into dst; returns how many were read. */
size_t platform_read_inputs(int8_t *dst, size_t n);
/* Writes a NUL-terminated text to the console. */
void platform_write(const char *text);
/* Restarts the tick counter at zero. */
void platform_ticks_reset(void);
/* Ticks since the last platform_ticks_reset() (25 MHz timer ticks on the board, 0 on the host). */
uint64_t platform_ticks(void);
/* Runs exactly 2 * n + (constant) instructions (n >= 1): the calibration loop. */
void platform_spin(uint32_t n);
/* Bytes of stack used so far (high-water mark), or 0 where unknown. */
uint32_t platform_stack_used(void);

#endif
