/* The harness's platform on the emulated mps2 board: console and input file through ARM
 * semihosting (BKPT 0xAB), time from CMSDK APB timer 0 at 0x40000000 (counts down at 25 MHz).
 * Under `qemu -icount shift=6` every instruction takes 64 ns of virtual time, i.e. 1.6 ticks. */
#include <stdint.h>

#include "platform.h"

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE0 0x04
#define SYS_READ 0x06
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUNTIME_ERROR 0x20023

#define TIMER_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER_RELOAD (*(volatile uint32_t *)0x40000008u)
#define TIMER_INTSTATUS (*(volatile uint32_t *)0x4000000Cu)

#define STACK_PAINT 0xC5C5C5C5u

extern uint32_t _sstack;
extern uint32_t _estack;

static int input_handle = -1;

static int semihost(int operation, void *argument)
{
    register int r0 __asm__("r0") = operation;
    register void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static uint32_t text_length(const char *text)
{
    uint32_t length = 0;
    while (text[length] != '\0') {
        length++;
    }
    return length;
}

int platform_open_inputs(void)
{
    static char name[] = "inputs.bin";
    uint32_t block[3] = {(uint32_t)name, 1u /* "rb" */, text_length(name)};
    input_handle = semihost(SYS_OPEN, block);
    return input_handle < 0 ? -1 : 0;
}

size_t platform_read_inputs(int8_t *dst, size_t n)
{
    uint32_t block[3] = {(uint32_t)input_handle, (uint32_t)dst, (uint32_t)n};
    int not_read = semihost(SYS_READ, block);
    return not_read < 0 ? 0 : n - (size_t)not_read;
}

void platform_write(const char *text)
{
    semihost(SYS_WRITE0, (void *)text);
}

void platform_ticks_reset(void)
{
    TIMER_CTRL = 0;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_INTSTATUS = 1; /* clear the wrap flag */
    TIMER_CTRL = 1;      /* enable, no interrupt */
}

uint64_t platform_ticks(void)
{
    uint32_t wrapped = TIMER_INTSTATUS;
    uint32_t value = TIMER_VALUE;
    if (TIMER_INTSTATUS != wrapped) { /* wrapped between the two reads */
        wrapped = 1;
        value = TIMER_VALUE;
    }
    /* One wrap (2^32 ticks = 2.7e9 instructions) is accounted for; more cannot be seen. */
    return (uint64_t)(0xFFFFFFFFu - value) + (wrapped ? (1ull << 32) : 0ull);
}

void platform_spin(uint32_t n)
{
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}

uint32_t platform_stack_used(void)
{
    const uint32_t *word = &_sstack;
    while (word < &_estack && *word == STACK_PAINT) {
        word++;
    }
    return (uint32_t)((uintptr_t)&_estack - (uintptr_t)word);
}

/* Called by the start-up code when main returns: leave QEMU with main's status. */
void board_exit(int status)
{
    if (input_handle >= 0) {
        uint32_t block[1] = {(uint32_t)input_handle};
        semihost(SYS_CLOSE, block);
    }
    semihost(SYS_EXIT, (void *)(status == 0 ? ADP_STOPPED_APPLICATION_EXIT
                                            : ADP_STOPPED_RUNTIME_ERROR));
    for (;;) {
    }
}

/* Any fault or unexpected exception: say so and leave QEMU with a failure status. */
void board_fault(void)
{
    platform_write("FAULT\n");
    semihost(SYS_EXIT, (void *)ADP_STOPPED_RUNTIME_ERROR);
    for (;;) {
    }
}
