/* target.c: the C program the native engine's tests trace.
 *
 *   target N [COMM [wait]]
 *
 * names itself COMM (prctl PR_SET_NAME) when given and not "-", waits for a
 * line on stdin when "wait" is given, then calls f(i) for i = 0..N-1 (f
 * returns i+1) and rec(40) once (41 nested calls of rec, rec(n) returning
 * n: deeper than the engine's per-thread frame stack), prints the sum and
 * exits 0. noinline and the volatile sink keep the calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

static volatile long sink;

__attribute__((noinline)) long f(long x) {
	sink += x;
	return x + 1;
}

/* no-optimize-sibling-calls: gcc would turn the recursion into a loop */
__attribute__((noinline, optimize("no-optimize-sibling-calls"))) long rec(long n) {
	sink += n;
	if (n == 0)
		return 0;
	return rec(n - 1) + 1;
}

int main(int argc, char **argv) {
	long n = argc > 1 ? atol(argv[1]) : 1000;
	if (argc > 2 && strcmp(argv[2], "-") != 0)
		prctl(PR_SET_NAME, argv[2], 0, 0, 0);
	if (argc > 3 && strcmp(argv[3], "wait") == 0) {
		char line[16];
		if (!fgets(line, sizeof line, stdin))
			return 2;
	}
	long acc = 0;
	for (long i = 0; i < n; i++)
		acc += f(i);
	acc += rec(40);
	printf("%ld\n", acc);
	return 0;
}
