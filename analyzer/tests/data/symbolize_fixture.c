/* Fixture for the symbolization tests: a helper inlined into its caller, a function that is not
 * inlined, and the return addresses of their calls, which the program prints. The tests find
 * the lines of the calls by the @markers in the comments. */
#include <stdio.h>
#include <stdlib.h>

void *volatile call_sites[2];
volatile size_t bytes_requested;

__attribute__((noipa)) void *record_call_site(int slot, size_t n)
{
    call_sites[slot] = __builtin_return_address(0);
    bytes_requested += n;
    return malloc(n);
}

static inline __attribute__((always_inline)) void *fill_buffer(size_t n)
{
    void *p = record_call_site(0, n); /* @inlined_call */
    bytes_requested += 1;
    return p;
}

__attribute__((noipa)) void *outer_function(size_t n)
{
    void *p = fill_buffer(n * 2); /* @outer_call */
    bytes_requested += 2;
    return p;
}

__attribute__((noipa)) void *plain_function(size_t n)
{
    void *p = record_call_site(1, n); /* @plain_call */
    bytes_requested += 3;
    return p;
}

int main(void)
{
    void *a = outer_function(8);
    void *b = plain_function(16);
    printf("outer_function %p\n", (void *)&outer_function);
    printf("site0 %p\n", call_sites[0]);
    printf("site1 %p\n", call_sites[1]);
    free(a);
    free(b);
    return 0;
}
