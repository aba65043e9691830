#!/bin/sh
# What the serving image leaves out of the installed dependencies (the Dockerfile's `slim` stage).
#
# Each line removes files serving never opens, and the build then proves it: docker/warm.py serves
# both frameworks and scores files from what is left, and tests/container checks the image.
# Sizes are of the dependency set pinned by constraints.txt (docs/production.md#the-image).
set -eu
venv=${1:-/opt/venv}
site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_path('purelib'))")
cd "$site"

# 1. Native parts nothing serving loads (about 75 MB): Arrow Flight (RPC), Arrow's S3, GCS, Azure
#    and HDFS filesystems (pyarrow.fs imports them only if present) and its C++ test module;
#    ONNX Runtime's C API library (the Python module carries its own copy of the runtime) and its
#    model-conversion tools; the second and third copies of libarrow_python (pip writes the
#    symlinks of the wheel as files; the loader opens the .so.<major> name).
rm -rf pyarrow/include pyarrow/src pyarrow/includes \
    pyarrow/libarrow_flight.so* pyarrow/_flight.* pyarrow/libarrow_python_flight.so* \
    pyarrow/libarrow_s3.so* pyarrow/_s3fs.* pyarrow/_gcsfs.* pyarrow/_azurefs.* pyarrow/_hdfs.* \
    pyarrow/_pyarrow_cpp_tests.* \
    onnxruntime/capi/libonnxruntime.so* onnxruntime/transformers onnxruntime/quantization \
    onnxruntime/tools
for lib in libarrow_python libarrow_python_parquet_encryption; do
    rm -f "pyarrow/$lib.so" pyarrow/"$lib".so.*.*.*
done

# 2. Django applications ml-api does not install (INSTALLED_APPS: rest_framework and ml-api's own;
#    admindocs and admin stay, DRF's schema generator imports them; the admin site's files go),
#    message catalogues (USE_I18N = False; the locale packages stay, Django reads their
#    formats), the browsable API's files (the only renderer is JSON), and
#    the ReDoc copy of the docs assets (GET /docs serves Swagger UI's bundle and stylesheet).
rm -rf django/contrib/admin/static django/contrib/gis django/contrib/flatpages \
    django/contrib/postgres django/contrib/humanize django/contrib/redirects \
    django/contrib/sitemaps django/contrib/syndication \
    rest_framework/static drf_spectacular_sidecar/static/drf_spectacular_sidecar/redoc
find django rest_framework -type d -name LC_MESSAGES -prune -exec rm -rf {} +

# 3. Sources of compiled code, headers, type stubs and source maps (read by compilers, type
#    checkers and browser developer tools only).
find "$site" -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.pxi' \
    -o -name '*.h' -o -name '*.hpp' -o -name '*.c' -o -name '*.cpp' -o -name '*.map' \) -delete

# 4. Extension modules only the libraries' own test suites load (NumPy's _simd and *_tests,
#    SciPy's _test_*, _fpumode and ndimage's _ctest and _cytest; about 2 MB), and packages nothing
#    in the image imports (about 4.7 MB): prettytable and wcwidth (skops' model-card tables;
#    loading a .skops model does not use them) and protobuf and flatbuffers (ONNX Runtime's
#    conversion tools, removed above). docker/warm.py and tests/container prove serving without.
rm -f numpy/_core/_simd.* numpy/_core/_multiarray_tests.* numpy/_core/_rational_tests.* \
    numpy/_core/_umath_tests.* numpy/_core/_struct_ufunc_tests.* numpy/_core/_operand_flag_tests.* \
    scipy/_lib/_test_*.so scipy/_lib/_fpumode.* scipy/ndimage/_ctest.* scipy/ndimage/_cytest.* \
    scipy/special/_test_internal.* scipy/integrate/_test_multivariate.*
rm -rf prettytable prettytable-*.dist-info wcwidth wcwidth-*.dist-info \
    google/protobuf google/_upb protobuf-*.dist-info flatbuffers flatbuffers-*.dist-info
rmdir google 2>/dev/null || true

# 5. SciPy's wheel bundles its own copies of libgfortran and libquadmath next to NumPy's; where the
#    bytes are equal (the same versioned file name, so the same soname: NumPy, imported before
#    SciPy, already has that library open when SciPy's OpenBLAS asks for it), SciPy's becomes a
#    link to NumPy's (about 3 MB).
for lib in scipy.libs/*; do
    twin=numpy.libs/${lib#scipy.libs/}
    if [ -f "$twin" ] && [ ! -L "$lib" ] && cmp -s "$lib" "$twin"; then
        ln -sf "../$twin" "$lib"
    fi
done

# 6. Symbol tables of what is left, where the stripped file still loads (docker/strip.py).
"$venv/bin/python" "$(dirname "$0")/strip.py" "$venv"
