/*
 * The element walk of a probe request body, compiled: the same result as
 * fingerprint.summarise_elements (SSID, four-segment fingerprint, malformed reason), computed in
 * one pass without building the intermediate byte strings.
 *
 * Why compiled: every probe body that differs from the ones seen before (per-probe vendor data,
 * WPS UUIDs, nonces) takes the walk, and in Python the walk costs three times the rest of the
 * frame. The pure-Python function in fingerprint.py stays the reference and the fallback when
 * this module is not built (no C compiler or Python headers); the tests compare the two on every
 * capture and on fuzzed bodies.
 *
 * Each fingerprint segment is CRC-32 (the zlib polynomial, reflected 0xEDB88320) of the
 * segment's material, folded to 16 bits. CRC-32 of a concatenation is the running CRC over its
 * parts, so the materials are never assembled: each segment keeps a running CRC state.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define EID_SSID 0
#define EID_SUPPORTED_RATES 1
#define EID_HT_CAPABILITIES 45
#define EID_EXTENDED_RATES 50
#define EID_EXTENDED_CAPABILITIES 127
#define EID_VHT_CAPABILITIES 191
#define EID_VENDOR 221
#define EID_EXTENSION 255
#define EXT_HE_CAPABILITIES 35

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[n] = c;
    }
}

/* Running state: start at 0xFFFFFFFF, finish by inverting (as zlib.crc32 does internally). */
static inline uint32_t crc_update(uint32_t state, const uint8_t *p, Py_ssize_t len) {
    for (Py_ssize_t k = 0; k < len; k++) {
        state = crc_table[(state ^ p[k]) & 0xFF] ^ (state >> 8);
    }
    return state;
}

static inline uint32_t crc_byte(uint32_t state, uint8_t b) {
    return crc_table[(state ^ b) & 0xFF] ^ (state >> 8);
}

static const char HEX[] = "0123456789abcdef";

static inline void put_segment(char *out, uint32_t state) {
    uint32_t crc = state ^ 0xFFFFFFFFu;
    uint32_t folded = (crc ^ (crc >> 16)) & 0xFFFF;
    out[0] = HEX[(folded >> 12) & 0xF];
    out[1] = HEX[(folded >> 8) & 0xF];
    out[2] = HEX[(folded >> 4) & 0xF];
    out[3] = HEX[folded & 0xF];
}

/* summarise(data, start, end) -> (ssid | None, fingerprint, reason | None)
 * Walks data[start:end]; start and end are clamped to the buffer like a slice. */
static PyObject *summarise(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "summarise(data, start, end) takes 3 arguments");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t stop = PyLong_AsSsize_t(args[2]);
    if ((start == -1 || stop == -1) && PyErr_Occurred()) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (start < 0) start = 0;
    if (stop > view.len) stop = view.len;
    if (stop < start) stop = start;
    const uint8_t *body = (const uint8_t *)view.buf + start;
    Py_ssize_t n = stop - start;

    uint32_t rates = 0xFFFFFFFFu, caps = 0xFFFFFFFFu, order = 0xFFFFFFFFu;
    uint8_t ids[256] = {0};
    Py_ssize_t extcaps_at = -1, extcaps_len = 0;
    Py_ssize_t ssid_at = -1, ssid_len = 0;
    const char *reason = NULL;
    Py_ssize_t i = 0;
    while (i < n) {
        if (i + 2 > n) {
            reason = "ie_trailing_byte";
            break;
        }
        uint8_t eid = body[i];
        Py_ssize_t end = i + 2 + body[i + 1];
        if (end > n) {
            reason = "ie_truncated";
            break;
        }
        order = crc_byte(order, eid);
        if (eid == EID_SSID) {
            ids[eid] = 1;
            if (ssid_at < 0) {
                ssid_at = i + 2;
                ssid_len = end - (i + 2);
            }
        } else if (eid == EID_VENDOR) {
            /* OUI and vendor type only: the rest can carry per-probe data. */
            Py_ssize_t stop_at = end < i + 6 ? end : i + 6;
            order = crc_update(order, body + i + 2, stop_at - (i + 2));
            order = crc_byte(order, 0xFF);
        } else {
            ids[eid] = 1;
            if (eid == EID_SUPPORTED_RATES || eid == EID_EXTENDED_RATES) {
                rates = crc_update(rates, body + i, end - i);
            } else if (eid == EID_HT_CAPABILITIES || eid == EID_VHT_CAPABILITIES) {
                caps = crc_update(caps, body + i, end - i);
            } else if (eid == EID_EXTENDED_CAPABILITIES) {
                /* The length byte is part of the material, as in the Python walk. */
                extcaps_at = i + 1;
                extcaps_len = end - (i + 1);
            } else if (eid == EID_EXTENSION && end > i + 2) {
                uint8_t ext = body[i + 2];
                order = crc_byte(order, ext);
                if (ext == EXT_HE_CAPABILITIES) {
                    caps = crc_update(caps, body + i, end - i);
                }
            }
        }
        i = end;
    }
    /* base: the rate elements, then the sorted set of element ids. */
    for (int k = 0; k < 256; k++) {
        if (ids[k]) {
            rates = crc_byte(rates, (uint8_t)k);
        }
    }
    uint32_t ext = 0xFFFFFFFFu;
    if (extcaps_at >= 0) {
        ext = crc_update(ext, body + extcaps_at, extcaps_len);
    }
    char fp[16];
    put_segment(fp, rates);
    put_segment(fp + 4, caps);
    put_segment(fp + 8, ext);
    put_segment(fp + 12, order);

    PyObject *ssid;
    if (ssid_at >= 0) {
        ssid = PyUnicode_DecodeUTF8((const char *)body + ssid_at, ssid_len, "replace");
        if (ssid == NULL) {
            PyBuffer_Release(&view);
            return NULL;
        }
    } else {
        ssid = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&view);
    PyObject *fingerprint = PyUnicode_FromStringAndSize(fp, 16);
    if (fingerprint == NULL) {
        Py_DECREF(ssid);
        return NULL;
    }
    PyObject *why = reason ? PyUnicode_InternFromString(reason) : Py_NewRef(Py_None);
    if (why == NULL) {
        Py_DECREF(ssid);
        Py_DECREF(fingerprint);
        return NULL;
    }
    PyObject *result = PyTuple_New(3);
    if (result == NULL) {
        Py_DECREF(ssid);
        Py_DECREF(fingerprint);
        Py_DECREF(why);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, ssid);
    PyTuple_SET_ITEM(result, 1, fingerprint);
    PyTuple_SET_ITEM(result, 2, why);
    return result;
}

static PyMethodDef methods[] = {
    {"summarise", (PyCFunction)(void (*)(void))summarise, METH_FASTCALL,
     "summarise(data, start, end) -> (ssid, fingerprint, reason): the element walk of "
     "data[start:end], as fingerprint.summarise_elements."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ewalk", "Compiled element walk of probe request bodies.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ewalk(void) {
    crc_init();
    return PyModule_Create(&module);
}
