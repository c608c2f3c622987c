# cmake/axon_pc.cmake - writes axon.pc at INSTALL time (run by install(SCRIPT)),
# because only then is the real prefix known: `cmake --install --prefix P`
# may differ from the prefix configured.
#
# Inputs (set by install(CODE) in CMakeLists.txt): AXON_PC_IN, AXON_PC_OUT_DIR,
# AXON_PC_LIBDIR (relative, e.g. lib), AXON_PC_INCLUDEDIR, AXON_PC_VERSION,
# AXON_PC_SYSTEM_LIBDIRS, AXON_PC_SAN_FLAGS.
#
# Two things an embedder's `cc app.c $(pkg-config --cflags --libs axon)` needs
# that a bare -L/-l does not give:
#  - a run path when libdir is not one the dynamic loader searches by itself
#    (/usr/lib, /lib and their multiarch and lib64 forms).  Without it the
#    program links and then fails with "libaxon.so.0: cannot open shared
#    object file" (even /usr/local/lib is found only after ldconfig has run).
#    PMIx and Open MPI's wrappers do the same.  --enable-new-dtags makes it a
#    RUNPATH, so LD_LIBRARY_PATH still overrides it; system prefixes get none
#    (distributions forbid run paths to system directories).
#  - the sanitizer flags of a sanitizer build: an instrumented libaxon needs
#    its runtime loaded first, so the program must be compiled and linked
#    with the same -fsanitize flags (without them a TSan install crashes at
#    start).
cmake_policy(VERSION 3.25) # install scripts start with no policies set
set(prefix "${CMAKE_INSTALL_PREFIX}")
get_filename_component(libdir_abs "${prefix}/${AXON_PC_LIBDIR}" ABSOLUTE)
file(RELATIVE_PATH AXON_PC_TO_PREFIX "${libdir_abs}/pkgconfig" "${prefix}")
string(REGEX REPLACE "/$" "" AXON_PC_TO_PREFIX "${AXON_PC_TO_PREFIX}")
set(AXON_PC_RPATH "")
if(NOT libdir_abs IN_LIST AXON_PC_SYSTEM_LIBDIRS)
  set(AXON_PC_RPATH "-Wl,-rpath,\${libdir} -Wl,--enable-new-dtags ")
endif()
set(AXON_PC_FLAGS "")
if(AXON_PC_SAN_FLAGS)
  string(REPLACE ";" " " AXON_PC_FLAGS " ${AXON_PC_SAN_FLAGS}")
endif()
configure_file("${AXON_PC_IN}" "${AXON_PC_OUT_DIR}/axon.pc" @ONLY)
file(INSTALL DESTINATION "${prefix}/${AXON_PC_LIBDIR}/pkgconfig" TYPE FILE
     FILES "${AXON_PC_OUT_DIR}/axon.pc")
