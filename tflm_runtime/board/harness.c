/* Benchmark harness for a model behind the stable API of model.h (model_input, model_output,
 * model_invoke, MODEL_INPUT_BYTES, MODEL_OUTPUT_BYTES). Reads inputs.bin sample by sample, runs
 * the model on each and prints, one record a line:
 *   CAL <empty> <short> <long> <n_short> <n_long> <mark>   calibration ticks (see docs/board.md)
 *   RUN <sample> <ticks> <output bytes as hex>
 *   LAYER <sample> <index> <ticks since the measurement start>   (per-layer mode only)
 *   STACK <bytes>
 *   DONE <samples>
 * The same file builds for the board (board_platform.c) and the host (host_platform.c). */
#include <stdint.h>

#include "layer_hook.h"
#include "model.h"
#include "platform.h"

#define SPIN_SHORT 1000u
#define SPIN_LONG 11000u

#ifdef BOARD_LAYER_MARKS
#define MAX_MARKS 512
static uint64_t marks[MAX_MARKS];
static int mark_index[MAX_MARKS];
static int mark_count;

void board_layer_mark(int index)
{
    uint64_t now = platform_ticks();
    if (mark_count < MAX_MARKS) {
        marks[mark_count] = now;
        mark_index[mark_count] = index;
        mark_count++;
    }
}
#else
void board_layer_mark(int index)
{
    (void)index;
}
#endif

static char *append_text(char *out, const char *text)
{
    while (*text != '\0') {
        *out++ = *text++;
    }
    return out;
}

static char *append_uint(char *out, uint64_t value)
{
    char digits[24];
    int count = 0;
    do {
        digits[count++] = (char)('0' + (int)(value % 10u));
        value /= 10u;
    } while (value != 0u);
    while (count > 0) {
        *out++ = digits[--count];
    }
    return out;
}

static void write_record(const char *tag, const uint64_t *values, int count)
{
    char line[256];
    char *out = append_text(line, tag);
    for (int i = 0; i < count; i++) {
        *out++ = ' ';
        out = append_uint(out, values[i]);
    }
    *out = '\0';
    platform_write(line);
}

static void write_line(const char *tag, const uint64_t *values, int count)
{
    write_record(tag, values, count);
    platform_write("\n");
}

static void write_hex(const int8_t *bytes, uint32_t count)
{
    static const char hex_digits[] = "0123456789abcdef";
    char chunk[2 * 64 + 1];
    uint32_t done = 0;
    while (done < count) {
        uint32_t n = count - done < 64u ? count - done : 64u;
        for (uint32_t i = 0; i < n; i++) {
            uint8_t byte = (uint8_t)bytes[done + i];
            chunk[2 * i] = hex_digits[byte >> 4];
            chunk[2 * i + 1] = hex_digits[byte & 15u];
        }
        chunk[2 * n] = '\0';
        platform_write(chunk);
        done += n;
    }
}

static uint64_t spin_ticks(uint32_t n)
{
    platform_ticks_reset();
    uint64_t start = platform_ticks();
    platform_spin(n);
    return platform_ticks() - start;
}

static uint64_t mark_ticks(void)
{
#ifdef BOARD_LAYER_MARKS
    mark_count = 0;
    platform_ticks_reset();
    board_layer_mark(0);
    board_layer_mark(1);
    uint64_t ticks = marks[1] - marks[0];
    mark_count = 0;
    return ticks;
#else
    return 0;
#endif
}

int main(void)
{
    platform_ticks_reset();
    uint64_t start = platform_ticks();
    uint64_t empty = platform_ticks() - start;
    uint64_t calibration[6] = {empty, spin_ticks(SPIN_SHORT), spin_ticks(SPIN_LONG), SPIN_SHORT,
                               SPIN_LONG, mark_ticks()};
    write_line("CAL", calibration, 6);

    if (platform_open_inputs() != 0) {
        platform_write("ERROR cannot open inputs.bin\n");
        return 1;
    }
    uint64_t sample = 0;
    while (platform_read_inputs(model_input(), MODEL_INPUT_BYTES) == MODEL_INPUT_BYTES) {
#ifdef BOARD_LAYER_MARKS
        mark_count = 0;
#endif
        platform_ticks_reset();
        start = platform_ticks();
        model_invoke();
        uint64_t ticks = platform_ticks() - start;
        uint64_t run[2] = {sample, ticks};
        write_record("RUN", run, 2);
        platform_write(" ");
        write_hex(model_output(), MODEL_OUTPUT_BYTES);
        platform_write("\n");
#ifdef BOARD_LAYER_MARKS
        for (int i = 0; i < mark_count; i++) {
            uint64_t layer[3] = {sample, (uint64_t)mark_index[i], marks[i] - start};
            write_line("LAYER", layer, 3);
        }
#endif
        sample++;
    }
    uint64_t stack[1] = {platform_stack_used()};
    write_line("STACK", stack, 1);
    write_line("DONE", &sample, 1);
    return 0;
}
