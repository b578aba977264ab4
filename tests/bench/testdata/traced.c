/* traced.c: the program whose slowdown under tracing the benchmark
 * measures. It calls one tiny function, f, ITERATIONS times (100000 unless
 * given as the first argument); the uprobe and uretprobe on f fire on every
 * call. noinline and the volatile sink keep the compiler from removing or
 * inlining the calls. */
#include <stdio.h>
#include <stdlib.h>

static volatile long sink;

__attribute__((noinline)) long f(long x) {
	sink += x;
	return x + 1;
}

int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 100000;
	long acc = 0;
	for (long i = 0; i < n; i++)
		acc += f(i);
	printf("%ld\n", acc);
	return 0;
}
