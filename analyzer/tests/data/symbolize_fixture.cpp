// Fixture for the symbolization tests: C++ functions in namespaces and a class template, whose
// calls' return addresses the program prints. The tests find the lines of the calls by the
// @markers in the comments.
#include <cstdio>
#include <cstdlib>

void *volatile call_sites[3];
volatile std::size_t bytes_requested;

extern "C" __attribute__((noipa)) void *record_call_site(int slot, std::size_t n)
{
    call_sites[slot] = __builtin_return_address(0);
    bytes_requested += n;
    return std::malloc(n);
}

namespace leakview_fixture {

template <typename T> struct Pool {
    __attribute__((noipa)) T *grab(std::size_t count);
};

template <typename T> T *Pool<T>::grab(std::size_t count)
{
    T *p = static_cast<T *>(record_call_site(0, count * sizeof(T))); // @grab_call
    bytes_requested += 1;
    return p;
}

// A templated constructor of a class template: its mangled name has template arguments but no
// return type, which a demangler must not mistake for the first parameter.
template <typename T> struct Holder {
    T *value;
    template <typename U> __attribute__((noipa)) Holder(U seed, int extra)
    {
        value = static_cast<T *>(record_call_site(2, sizeof(T) + static_cast<std::size_t>(extra))); // @holder_call
        *value = static_cast<T>(seed);
    }
};

namespace detail {
__attribute__((noipa)) void *make(int kind)
{
    void *p = record_call_site(1, static_cast<std::size_t>(kind)); // @make_call
    bytes_requested += 2;
    return p;
}
} // namespace detail

} // namespace leakview_fixture

int main()
{
    leakview_fixture::Pool<int> pool;
    int *a = pool.grab(4);
    void *b = leakview_fixture::detail::make(32);
    leakview_fixture::Holder<long> holder(3.5, 2);
    std::printf("anchor %p\n", reinterpret_cast<void *>(&leakview_fixture::detail::make));
    std::printf("site0 %p\n", call_sites[0]);
    std::printf("site1 %p\n", call_sites[1]);
    std::printf("site2 %p\n", call_sites[2]);
    std::free(a);
    std::free(b);
    std::free(holder.value);
    return 0;
}
