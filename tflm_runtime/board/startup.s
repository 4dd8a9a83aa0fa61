/* Start-up for the emulated Cortex-M board (mps2-an386 / mps2-an500 in QEMU).
 *
 * Vector table at address 0 (VTOR reset value), initial stack pointer = top of RAM.
 * Reset_Handler: enable the FPU (CPACR CP10/CP11 full access) before any float instruction,
 * paint the stack with a pattern (for the stack high-water mark), copy .data from Flash,
 * zero .bss, call main(), and leave QEMU through semihosting SYS_EXIT with main's result.
 * Written in assembly so that nothing runs before the FPU is on.
 */
    .syntax unified
    .thumb

    .section .isr_vector, "a", %progbits
    .align 2
    .global board_vector_table
board_vector_table:
    .word _estack
    .word Reset_Handler
    .word Fault_Handler        /* NMI */
    .word Fault_Handler        /* HardFault */
    .word Fault_Handler        /* MemManage */
    .word Fault_Handler        /* BusFault */
    .word Fault_Handler        /* UsageFault */
    .word 0, 0, 0, 0
    .word Fault_Handler        /* SVCall */
    .word Fault_Handler        /* DebugMon */
    .word 0
    .word Fault_Handler        /* PendSV */
    .word Fault_Handler        /* SysTick */

    .text
    .thumb_func
    .global Reset_Handler
    .type Reset_Handler, %function
Reset_Handler:
    /* CPACR (0xE000ED88) |= 0xF << 20: CP10 and CP11 full access. */
    ldr r0, =0xE000ED88
    ldr r1, [r0]
    orr r1, r1, #(0xF << 20)
    str r1, [r0]
    dsb
    isb
    /* Paint the stack region [_sstack, sp) with BOARD_STACK_PAINT. */
    ldr r0, =_sstack
    mov r1, sp
    ldr r2, =0xC5C5C5C5
1:  cmp r0, r1
    bhs 2f
    str r2, [r0], #4
    b 1b
2:  /* Copy .data from its load address in Flash. */
    ldr r0, =_sdata
    ldr r1, =_edata
    ldr r2, =_sidata
3:  cmp r0, r1
    bhs 4f
    ldr r3, [r2], #4
    str r3, [r0], #4
    b 3b
4:  /* Zero .bss. */
    ldr r0, =_sbss
    ldr r1, =_ebss
    movs r2, #0
5:  cmp r0, r1
    bhs 6f
    str r2, [r0], #4
    b 5b
6:  bl main
    bl board_exit
    b .
    .size Reset_Handler, . - Reset_Handler

    .thumb_func
    .global Fault_Handler
    .type Fault_Handler, %function
Fault_Handler:
    bl board_fault
    b .
    .size Fault_Handler, . - Fault_Handler
