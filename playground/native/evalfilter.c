/* A C front for llama.cpp's scheduler eval callback (cb_eval).
 *
 * The scheduler calls cb_eval twice for graph nodes: once for *every* node with ask=true ("do you want
 * this one?") and, for the nodes we said yes to, once more with ask=false after computing it. A model of
 * 30 blocks has about a thousand nodes per forward pass, so answering the ask phase from Python (through
 * ctypes) costs a millisecond or more per generated token. This filter answers it in C: only the
 * residual-stream outputs "l_out-<layer>" of the wanted layers say yes. For those it either copies the
 * last row into a per-layer buffer itself (the streaming hot path: the row that predicts the next token)
 * or hands the node to the Python callback (all rows wanted, or a guardrail intervention that rewrites
 * the rows).
 *
 * It needs no ggml headers and links against nothing: the ggml functions it calls are passed in as
 * pointers by playground/backends/eval_filter.py. The module is also a (method-less) Python extension so
 * that setuptools builds it with the package; Python code loads it through ctypes.
 */
#include <Python.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef const char *(*pg_get_name_fn)(const void *tensor);
typedef int64_t (*pg_nelements_fn)(const void *tensor);
typedef void (*pg_tensor_get_fn)(const void *tensor, void *data, size_t offset, size_t size);
typedef bool (*pg_callback_fn)(void *tensor, bool ask, void *user_data);

#define PG_MAX_LAYERS 256

typedef struct {
    pg_get_name_fn get_name;
    pg_nelements_fn nelements;
    pg_tensor_get_fn tensor_get;
    pg_callback_fn slow_path;  /* Python: all-row capture and interventions */
    uint64_t wanted[PG_MAX_LAYERS / 64];  /* layers whose l_out node we want at all */
    uint64_t slow[PG_MAX_LAYERS / 64];    /* of those, the ones the Python callback handles */
    float *last_rows;                     /* n_layers x d_model: last row of each fast layer */
    int64_t d_model;
    int64_t calls;                        /* ask-phase calls answered (for tests and the benchmark) */
} pg_filter;

static int layer_of(const char *name) {
    static const char prefix[] = "l_out-";
    if (name == NULL || strncmp(name, prefix, sizeof(prefix) - 1) != 0) {
        return -1;
    }
    const char *p = name + sizeof(prefix) - 1;
    if (*p == '\0') {
        return -1;
    }
    int layer = 0;
    for (; *p; ++p) {
        if (*p < '0' || *p > '9' || layer >= PG_MAX_LAYERS) {
            return -1;
        }
        layer = layer * 10 + (*p - '0');
    }
    return layer < PG_MAX_LAYERS ? layer : -1;
}

static bool has(const uint64_t *mask, int layer) {
    return (mask[layer >> 6] >> (layer & 63)) & 1u;
}

bool pg_eval_filter(void *tensor, bool ask, void *user_data) {
    pg_filter *f = (pg_filter *)user_data;
    if (ask) {
        f->calls++;
    }
    int layer = layer_of(f->get_name(tensor));
    if (layer < 0 || !has(f->wanted, layer)) {
        return false;
    }
    if (ask) {
        return true;
    }
    if (has(f->slow, layer)) {
        return f->slow_path(tensor, false, user_data);
    }
    int64_t n = f->nelements(tensor);
    if (f->d_model <= 0 || n < f->d_model) {
        return true;
    }
    size_t row_bytes = (size_t)f->d_model * sizeof(float);
    size_t offset = (size_t)(n - f->d_model) * sizeof(float);
    f->tensor_get(tensor, f->last_rows + (size_t)layer * (size_t)f->d_model, offset, row_bytes);
    return true;
}

/* Lets the Python side check that its ctypes mirror of pg_filter has the same layout. */
size_t pg_filter_size(void) { return sizeof(pg_filter); }

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_evalfilter", "C eval-callback filter (see evalfilter.c).", -1, NULL};

PyMODINIT_FUNC PyInit__evalfilter(void) { return PyModule_Create(&module); }
