/*
 * archiver._fasthash: the inner loops of a redaction token tree, and two small hot
 * paths of ingest (base32 of WARC digests, batches of manifest files), in C.
 *
 * A 5 KB article has about 400 tokens; its token tree is about 800 SHA-256
 * computations of one or two blocks each. In Python each costs a call, two
 * concatenations and a hash object, which made the token tree most of the CPU
 * time of ingesting and verifying an article. These functions do the same
 * hashing with OpenSSL's libcrypto (the library Python's hashlib uses), with
 * no Python objects per hash. archiver/fasthash.py holds the reference
 * implementation in Python (fsutil.write_new for the batch writer), used when
 * this module is not built, and the tests check that both give the same bytes.
 *
 *   leaf_hashes(salts, tokens) -> bytes
 *       for each token i: SHA-256(0x00 || salts[16i:16i+16] || UTF-8(token i)),
 *       concatenated (32 bytes each)
 *   split_tokens(text, pos=0) -> list[str]
 *       re.compile(r"\S+\s*").findall(text, pos): the tokens of a text
 *   perfect_root(nodes) -> bytes
 *       the RFC 9162 root of 2^k node hashes given concatenated (32 bytes each),
 *       each interior node SHA-256(0x01 || left || right)
 *   text_root(text, seed) -> (bytes, int)
 *       the whole token tree of a decoded text in one call: its tokens (a
 *       leading white-space run, then each run of non-space characters with
 *       the white space after it), their salts (SHAKE-256 blocks of the seed),
 *       their leaves and the RFC 9162 root of any number of them, with the
 *       token count; the verifier has each article's text whole, and the
 *       Python around the calls above was most of its token-tree time
 *   write_new_files(items, sync) -> None
 *       for each (path, data): create path (O_EXCL, O_NOFOLLOW, 0644), write
 *       data, fsync if sync: what fsutil.write_new does, for a batch of files
 *       with the GIL released once (per file and per system call, the writer
 *       thread's GIL hand-overs cost the ingesting thread more than the writes)
 *   b32encode(data) -> str
 *       base64.b32encode(data).decode(): the form of WARC digests, written for
 *       every record (the standard library's is a Python loop)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#define SALT 16
#define HASH 32

static PyObject *
leaf_hashes(PyObject *self, PyObject *args)
{
    Py_buffer salts;
    PyObject *tokens;
    if (!PyArg_ParseTuple(args, "y*O!:leaf_hashes", &salts, &PyList_Type, &tokens))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(tokens);
    if (salts.len != n * SALT) {
        PyBuffer_Release(&salts);
        PyErr_SetString(PyExc_ValueError, "leaf_hashes: need 16 bytes of salt per token");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * HASH);
    if (out == NULL) {
        PyBuffer_Release(&salts);
        return NULL;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    const unsigned char *salt = (const unsigned char *)salts.buf;
    static const unsigned char leaf_prefix = 0x00;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *tok = PyList_GET_ITEM(tokens, i);
        if (!PyUnicode_Check(tok)) {
            PyErr_SetString(PyExc_TypeError, "leaf_hashes: tokens must be str");
            goto fail;
        }
        Py_ssize_t len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(tok, &len);
        if (utf8 == NULL)
            goto fail; /* e.g. a lone surrogate: the same error str.encode raises */
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Update(&c, &leaf_prefix, 1);
        SHA256_Update(&c, salt + i * SALT, SALT);
        SHA256_Update(&c, utf8, (size_t)len);
        SHA256_Final(dst + i * HASH, &c);
    }
    PyBuffer_Release(&salts);
    return out;
fail:
    PyBuffer_Release(&salts);
    Py_DECREF(out);
    return NULL;
}

static PyObject *
perfect_root(PyObject *self, PyObject *args)
{
    Py_buffer nodes;
    if (!PyArg_ParseTuple(args, "y*:perfect_root", &nodes))
        return NULL;
    Py_ssize_t count = nodes.len / HASH;
    if (nodes.len % HASH != 0 || count == 0 || (count & (count - 1)) != 0) {
        PyBuffer_Release(&nodes);
        PyErr_SetString(PyExc_ValueError, "perfect_root: need 2^k hashes of 32 bytes");
        return NULL;
    }
    if (count == 1) {
        PyObject *one = PyBytes_FromStringAndSize(nodes.buf, HASH);
        PyBuffer_Release(&nodes);
        return one;
    }
    unsigned char *level = PyMem_Malloc((size_t)(count / 2) * HASH);
    if (level == NULL) {
        PyBuffer_Release(&nodes);
        return PyErr_NoMemory();
    }
    static const unsigned char node_prefix = 0x01;
    const unsigned char *src = (const unsigned char *)nodes.buf;
    /* each level halves in place: pair j of the level below becomes node j */
    for (Py_ssize_t width = count; width > 1; width /= 2) {
        for (Py_ssize_t j = 0; j < width / 2; j++) {
            SHA256_CTX c;
            SHA256_Init(&c);
            SHA256_Update(&c, &node_prefix, 1);
            SHA256_Update(&c, src + 2 * j * HASH, 2 * HASH);
            SHA256_Final(level + j * HASH, &c);
        }
        src = level;
    }
    PyObject *root = PyBytes_FromStringAndSize((const char *)level, HASH);
    PyMem_Free(level);
    PyBuffer_Release(&nodes);
    return root;
}

static PyObject *
split_tokens(PyObject *self, PyObject *args)
{
    /* re.findall(r"\S+\s*", text, pos): \s in a str pattern is Py_UNICODE_ISSPACE */
    PyObject *text;
    Py_ssize_t pos = 0;
    if (!PyArg_ParseTuple(args, "U|n:split_tokens", &text, &pos))
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Py_ssize_t i = pos < 0 ? 0 : pos;
    while (i < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
        i++;
    while (i < n) {
        Py_ssize_t start = i;
        while (i < n && !Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            i++;
        while (i < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            i++;
        PyObject *tok = PyUnicode_Substring(text, start, i);
        if (tok == NULL || PyList_Append(out, tok) < 0) {
            Py_XDECREF(tok);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(tok);
    }
    return out;
}

#define SALT_BLOCK 1024
static const char salt_prefix[] = "archiver/token-salt/1";

/* RFC 9162 MTH over n >= 1 leaf hashes: split at the largest power of two below n */
static void
tree_hash(const unsigned char *leaves, Py_ssize_t n, unsigned char *out)
{
    if (n == 1) {
        memcpy(out, leaves, HASH);
        return;
    }
    Py_ssize_t k = 1;
    while (k * 2 < n)
        k *= 2;
    unsigned char node[1 + 2 * HASH];
    node[0] = 0x01;
    tree_hash(leaves, k, node + 1);
    tree_hash(leaves + k * HASH, n - k, node + 1 + HASH);
    /* SHA256_* and not the one-shot SHA256(), which fetches the algorithm on every call in
       OpenSSL 3 and made a tree slower than the Python around the old calls */
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, node, sizeof node);
    SHA256_Final(out, &c);
}

static Py_ssize_t
utf8_len(Py_UCS4 c)
{
    return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

static int
salts_of_block(const unsigned char *seed, Py_ssize_t seed_len, uint64_t block, unsigned char *out,
               size_t len)
{
    unsigned char be[8];
    for (int b = 0; b < 8; b++)
        be[b] = (unsigned char)(block >> (56 - 8 * b));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_shake256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, salt_prefix, sizeof salt_prefix - 1) == 1 &&
             EVP_DigestUpdate(ctx, seed, (size_t)seed_len) == 1 && EVP_DigestUpdate(ctx, be, 8) == 1 &&
             EVP_DigestFinalXOF(ctx, out, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

static PyObject *
text_root(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_buffer seed;
    if (!PyArg_ParseTuple(args, "Uy*:text_root", &text, &seed))
        return NULL;
    Py_ssize_t nbytes;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &nbytes);
    if (utf8 == NULL) { /* a lone surrogate: the error str.encode raises */
        PyBuffer_Release(&seed);
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    /* token i is utf8[starts[i] : starts[i + 1]] */
    Py_ssize_t cap = 64, count = 0, i = 0, at = 0;
    Py_ssize_t *starts = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(cap + 1));
    if (starts == NULL) {
        PyBuffer_Release(&seed);
        return PyErr_NoMemory();
    }
    int leading = n > 0 && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, 0));
    while (i < n) {
        if (count == cap) {
            Py_ssize_t *grown = PyMem_Realloc(starts, sizeof(Py_ssize_t) * (size_t)(2 * cap + 1));
            if (grown == NULL) {
                PyMem_Free(starts);
                PyBuffer_Release(&seed);
                return PyErr_NoMemory();
            }
            starts = grown;
            cap *= 2;
        }
        starts[count++] = at;
        if (!leading) {
            while (i < n && !Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
                at += utf8_len(PyUnicode_READ(kind, data, i++));
        }
        leading = 0;
        while (i < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            at += utf8_len(PyUnicode_READ(kind, data, i++));
    }
    starts[count] = at;
    unsigned char root[HASH];
    int ok = 1;
    if (count == 0) {
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Final(root, &c);
    } else {
        unsigned char *leaves = PyMem_Malloc((size_t)count * HASH);
        unsigned char *salts = PyMem_Malloc(16 * SALT_BLOCK);
        if (leaves == NULL || salts == NULL) {
            PyMem_Free(leaves);
            PyMem_Free(salts);
            PyMem_Free(starts);
            PyBuffer_Release(&seed);
            return PyErr_NoMemory();
        }
        Py_BEGIN_ALLOW_THREADS
        static const unsigned char leaf_prefix = 0x00;
        for (Py_ssize_t t = 0; t < count && ok; t++) {
            if (t % SALT_BLOCK == 0) {
                /* a shorter SHAKE output is a prefix of a longer one: derive only what is used */
                Py_ssize_t in_block = count - t < SALT_BLOCK ? count - t : SALT_BLOCK;
                ok = salts_of_block(seed.buf, seed.len, (uint64_t)(t / SALT_BLOCK), salts,
                                    16 * (size_t)in_block);
            }
            SHA256_CTX c;
            SHA256_Init(&c);
            SHA256_Update(&c, &leaf_prefix, 1);
            SHA256_Update(&c, salts + 16 * (t % SALT_BLOCK), 16);
            SHA256_Update(&c, utf8 + starts[t], (size_t)(starts[t + 1] - starts[t]));
            SHA256_Final(leaves + t * HASH, &c);
        }
        if (ok)
            tree_hash(leaves, count, root);
        Py_END_ALLOW_THREADS
        PyMem_Free(leaves);
        PyMem_Free(salts);
    }
    PyMem_Free(starts);
    PyBuffer_Release(&seed);
    if (!ok) {
        PyErr_SetString(PyExc_RuntimeError, "text_root: SHAKE-256 failed in libcrypto");
        return NULL;
    }
    return Py_BuildValue("(y#n)", (const char *)root, (Py_ssize_t)HASH, count);
}

static PyObject *
write_new_files(PyObject *self, PyObject *args)
{
    PyObject *items;
    int sync;
    if (!PyArg_ParseTuple(args, "O!p:write_new_files", &PyList_Type, &items, &sync))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items);
    PyObject **paths = PyMem_Calloc((size_t)(n ? n : 1), sizeof(PyObject *));
    Py_buffer *datas = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_buffer));
    if (paths == NULL || datas == NULL) {
        PyMem_Free(paths);
        PyMem_Free(datas);
        return PyErr_NoMemory();
    }
    Py_ssize_t ready = 0;
    PyObject *result = NULL;
    for (; ready < n; ready++) {
        PyObject *item = PyList_GET_ITEM(items, ready);
        PyObject *path_obj;
        if (!PyArg_ParseTuple(item, "Oy*:write_new_files item", &path_obj, &datas[ready]))
            goto done;
        if (!PyUnicode_FSConverter(path_obj, &paths[ready])) {
            PyBuffer_Release(&datas[ready]);
            goto done;
        }
    }
    Py_ssize_t failed = -1;
    int err = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && failed < 0; i++) {
        const char *path = PyBytes_AS_STRING(paths[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
            failed = i;
            err = errno;
            break;
        }
        const char *p = datas[i].buf;
        Py_ssize_t left = datas[i].len;
        while (left > 0) {
            ssize_t w = write(fd, p, (size_t)left);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            p += w;
            left -= w;
        }
        if (left > 0 || (sync && fsync(fd) != 0)) {
            failed = i;
            err = errno;
            close(fd);
            unlink(path); /* no partial record left behind, as write_new */
            break;
        }
        if (close(fd) != 0) {
            failed = i;
            err = errno;
            unlink(path);
        }
    }
    Py_END_ALLOW_THREADS
    if (failed >= 0) {
        errno = err;
        PyObject *name = PyList_GET_ITEM(items, failed);
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, PyTuple_GET_ITEM(name, 0));
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < ready; i++) {
        Py_XDECREF(paths[i]);
        PyBuffer_Release(&datas[i]);
    }
    PyMem_Free(paths);
    PyMem_Free(datas);
    return result;
}

static PyObject *
b32encode(PyObject *self, PyObject *args)
{
    /* RFC 4648 base32 with padding, as base64.b32encode */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    static const int pad_for[5] = {0, 6, 4, 3, 1}; /* '=' after 0..4 leftover bytes */
    Py_buffer in;
    if (!PyArg_ParseTuple(args, "y*:b32encode", &in))
        return NULL;
    if (in.len > PY_SSIZE_T_MAX / 8 * 5 - 5) {
        PyBuffer_Release(&in);
        return PyErr_NoMemory();
    }
    Py_ssize_t groups = (in.len + 4) / 5;
    PyObject *out = PyUnicode_New(groups * 8, 127);
    if (out == NULL) {
        PyBuffer_Release(&in);
        return NULL;
    }
    Py_UCS1 *dst = PyUnicode_1BYTE_DATA(out);
    const unsigned char *src = (const unsigned char *)in.buf;
    for (Py_ssize_t g = 0; g < groups; g++) {
        unsigned char block[5] = {0, 0, 0, 0, 0};
        Py_ssize_t take = in.len - g * 5 < 5 ? in.len - g * 5 : 5;
        memcpy(block, src + g * 5, (size_t)take);
        uint64_t v = ((uint64_t)block[0] << 32) | ((uint64_t)block[1] << 24) |
                     ((uint64_t)block[2] << 16) | ((uint64_t)block[3] << 8) | block[4];
        for (int k = 0; k < 8; k++)
            dst[g * 8 + k] = (Py_UCS1)alphabet[(v >> (35 - 5 * k)) & 31];
        if (take < 5)
            memset(dst + g * 8 + 8 - pad_for[take], '=', (size_t)pad_for[take]);
    }
    PyBuffer_Release(&in);
    return out;
}

static PyMethodDef methods[] = {
    {"text_root", text_root, METH_VARARGS,
     "text_root(text, seed) -> (root, tokens): the whole token tree of a text"},
    {"write_new_files", write_new_files, METH_VARARGS,
     "write_new_files([(path, data), ...], sync) -> create each file anew with its data"},
    {"b32encode", b32encode, METH_VARARGS,
     "b32encode(data) -> base64.b32encode(data).decode('ascii'), faster"},
    {"split_tokens", split_tokens, METH_VARARGS,
     "split_tokens(text, pos=0) -> re.findall(r'\\S+\\s*', text, pos), faster"},
    {"leaf_hashes", leaf_hashes, METH_VARARGS,
     "leaf_hashes(salts, tokens) -> SHA-256(0x00 || salt_i || UTF-8(token_i)) for each token, concatenated"},
    {"perfect_root", perfect_root, METH_VARARGS,
     "perfect_root(nodes) -> the RFC 9162 root of 2^k concatenated 32-byte hashes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "archiver._fasthash",
    "Token-tree hashing and base32 in C (reference: archiver/fasthash.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit__fasthash(void)
{
    return PyModule_Create(&module);
}
