"""Only for the optional C accelerator (archiver/_fasthash.c): token trees, base32, batched
writes, whole WARC records.

Everything else is in pyproject.toml. Where the extension cannot be built (no C
compiler, or no OpenSSL or zlib headers), installation goes on without it and archiver
uses the same functions in Python (archiver/fasthash.py, fsutil.write_new): same bytes, slower.
"""

import os

from setuptools import Extension, setup

# libdeflate (Debian: libdeflate-dev), where present, inflates small WARC records in about
# half zlib's time; zlib still decides every member libdeflate refuses
DEFLATE = os.path.exists("/usr/include/libdeflate.h") and not os.environ.get("ARCHIVER_NO_LIBDEFLATE")

setup(
    ext_modules=[
        Extension(
            "archiver._fasthash",
            ["archiver/_fasthash.c"],
            libraries=["crypto", "z"] + (["deflate"] if DEFLATE else []),
            define_macros=[("HAVE_LIBDEFLATE", "1")] if DEFLATE else [],
            # SHA256_Init/Update/Final and SHA256_Transform: deprecated in OpenSSL 3 in favour
            # of EVP, kept for exactly this use (many tiny messages, where EVP's per-call
            # dispatch costs most); the CPU's SHA instructions are used directly where present
            extra_compile_args=["-O2", "-Wno-deprecated-declarations"],
            optional=True,
        )
    ]
)
