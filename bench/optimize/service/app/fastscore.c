/* The compiled hot loop of the service: a dot product over float32 weights. */
#include <stddef.h>

double fast_score(const float *w, const float *x, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)w[i] * (double)x[i];
  return s;
}
