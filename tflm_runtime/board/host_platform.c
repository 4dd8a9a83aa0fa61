/* The harness's platform on the host (reference build of the same model code with the host gcc):
 * stdio for the console and the input file; no timer, no stack measurement. */
#include <stdio.h>

#include "platform.h"

static FILE *input_file = NULL;

int platform_open_inputs(void)
{
    input_file = fopen("inputs.bin", "rb");
    return input_file == NULL ? -1 : 0;
}

size_t platform_read_inputs(int8_t *dst, size_t n)
{
    return fread(dst, 1, n, input_file);
}

void platform_write(const char *text)
{
    fputs(text, stdout);
}

void platform_ticks_reset(void)
{
}

uint64_t platform_ticks(void)
{
    return 0;
}

void platform_spin(uint32_t n)
{
    (void)n;
}

uint32_t platform_stack_used(void)
{
    return 0;
}
