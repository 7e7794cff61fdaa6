"""Small shared helpers: progress lines, atomic writes, content hashes, identifier sanitising, machine facts."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import tempfile
from pathlib import Path

CPP_KEYWORDS = frozenset("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char16_t char32_t class compl
const constexpr const_cast continue decltype default delete do double dynamic_cast else enum explicit
export extern false float for friend goto if inline int long mutable namespace new noexcept not not_eq
nullptr operator or or_eq private protected public register reinterpret_cast return short signed sizeof
static static_assert static_cast struct switch template this thread_local throw true try typedef typeid
typename union unsigned using virtual void volatile wchar_t while xor xor_eq main std nnet
char8_t concept consteval constinit co_await co_return co_yield requires import module
""".split())


# Lower-case (or mixed-case) names that the C/C++ standard library, POSIX or glibc headers may define as
# macros (all-caps names are refused as a class by `c_name_reserved`), plus the C library's function
# names, which <tgmath.h> and glibc may also define as macros and which share the global namespace with
# the generated top function.
C_MACROS = frozenset("""
assert errno stdin stdout stderr offsetof setjmp longjmp sigsetjmp siglongjmp va_arg va_copy va_end va_start
bool true false alignas alignof noreturn static_assert thread_local complex imaginary unreachable
isnan isinf isfinite isnormal signbit fpclassify isgreater isgreaterequal isless islessequal islessgreater
isunordered iscanonical issignaling issubnormal iszero math_errhandling
getc putc getchar putchar getwc putwc getwchar putwchar feof ferror clearerr fileno
tolower toupper isalpha isdigit isspace isupper islower isalnum isxdigit ispunct isprint isgraph iscntrl
isblank isascii toascii htonl htons ntohl ntohs major minor makedev alloca
st_atime st_mtime st_ctime sa_handler sa_sigaction si_pid si_uid si_status si_addr si_value si_band si_fd
si_int si_ptr h_errno h_addr howmany roundup powerof2 nitems isset isclr setbit clrbit
timerisset timerclear timercmp timeradd timersub unix linux i386 sun
be16toh be32toh be64toh htobe16 htobe32 htobe64 htole16 htole32 htole64 le16toh le32toh le64toh
bswap_16 bswap_32 bswap_64 ckd_add ckd_sub ckd_mul kill_dependency atomic_init atomic_load atomic_store
atomic_exchange atomic_fetch_add atomic_fetch_sub atomic_fetch_or atomic_fetch_and atomic_fetch_xor
atomic_compare_exchange_strong atomic_compare_exchange_weak atomic_is_lock_free
abs labs llabs div ldiv abort exit atexit quick_exit malloc calloc realloc free getenv system qsort bsearch
rand srand atoi atol atof strtol strtod printf fprintf sprintf snprintf scanf fscanf sscanf puts fputs gets
fgets fopen fclose fread fwrite fflush fseek ftell rewind remove rename tmpfile perror memcpy memmove memset
memcmp memchr strcpy strncpy strcat strncat strcmp strncmp strlen strchr strrchr strstr strtok strerror
time clock difftime mktime localtime gmtime asctime ctime strftime signal raise read write open close
acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 log log10 log1p log2 logb
ilogb frexp ldexp modf scalbn scalbln cbrt fabs hypot pow sqrt erf erfc lgamma tgamma ceil floor nearbyint
rint lrint llrint round lround llround trunc fmod remainder remquo copysign nan nextafter nexttoward fdim
fmax fmin fma carg cimag conj cproj creal cabs
int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t int_least8_t int_least16_t int_least32_t
int_least64_t uint_least8_t uint_least16_t uint_least32_t uint_least64_t int_fast8_t int_fast16_t int_fast32_t
int_fast64_t uint_fast8_t uint_fast16_t uint_fast32_t uint_fast64_t intptr_t uintptr_t intmax_t uintmax_t
size_t ssize_t ptrdiff_t max_align_t nullptr_t time_t clock_t pid_t off_t mode_t uid_t gid_t dev_t ino_t
nlink_t blksize_t blkcnt_t fpos_t div_t ldiv_t lldiv_t wint_t wctype_t mbstate_t sig_atomic_t jmp_buf
va_list fenv_t fexcept_t float_t double_t locale_t pthread_t timer_t clockid_t socklen_t
""".split())

# Base names (without ".h") of the headers a C++ build may include as <name.h>: C standard, POSIX,
# glibc/Linux, GCC, the ap_types/HLS headers and hls4ml's own firmware files. A project's
# firmware/<name>.h named like one shadows it (the firmware folder is on the include path).
SYSTEM_HEADERS = frozenset("""
assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign stdarg
stdatomic stdbit stdbool stdckdint stddef stdint stdio stdlib stdnoreturn string tgmath threads time uchar
wchar wctype aio cpio devctl dirent dlfcn endian fcntl fmtmsg fnmatch ftw glob grp iconv langinfo libgen
libintl monetary mqueue ndbm netdb nl_types poll pthread pwd regex sched search semaphore spawn strings
stropts syslog tar termios trace ulimit unistd utime utmpx wordexp features alloca malloc memory values
getopt error err argp argz envz byteswap link elf execinfo fstab mntent obstack paths printf pty resolv
shadow sgtty stab sysexits syscall termio ttyent utmp wait gconv ieee754 lastlog libio mcheck nss re_comp
regexp aliases ar thread_db ucontext ustat xlocale fts crypt fpu_control gshadow ifaddrs netash netax25
netinet netipx netiucv netpacket netrom netrose varargs mm_malloc cpuid omp openacc quadmath
immintrin x86intrin xmmintrin emmintrin pmmintrin tmmintrin smmintrin nmmintrin wmmintrin avxintrin
ap_common ap_decl ap_fixed ap_fixed_base ap_fixed_ref ap_fixed_special ap_int ap_int_base ap_int_ref
ap_int_special ap_private ap_shift_reg hls_stream hls_math hls_half hls_fpo hls_video etc
defines parameters myproject weights firmware
cxxabi binders auto_ptr hash_fun hashtable strstream backward_warning cxxabi_forced cxxabi_init_exception
cxxabi_tweaks gthr atomic_word basic_file c_io_config error_constants os_defines cpu_defines ctype_base
ctype_inline time_members messages_members extc
""".split())


def c_name_reserved(text: str) -> bool:
    """Whether ``text`` must not be used as a C++ identifier of a generated project: a C++ keyword, a
    macro, function or type of the C/C++ standard library or POSIX headers, an all-caps (macro-like)
    name, a reserved form (leading underscore, ``__``), or an ``ap_``/``hls_``/``nnet`` name of the HLS
    libraries."""
    if text in CPP_KEYWORDS or text in C_MACROS:
        return True
    return bool(re.fullmatch(r"[A-Z][A-Z0-9_]*|_.*|.*__.*", text) or
                re.fullmatch(r"(nnet|ap_|hls_).*", text, re.IGNORECASE))


def shadows_header(text: str) -> bool:
    """Whether a file ``<text>.h`` on the include path would shadow a system or library header (compared
    case-insensitively: macOS and Windows file systems are)."""
    return text.lower() in SYSTEM_HEADERS


def stage(message: str) -> None:
    """One progress line per stage (flushed, so it shows under make and in CI logs)."""
    print(f"[skiplstm] {message}", flush=True)


def cpu_model(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU model as the OS names it: ``model name`` from /proc/cpuinfo with the vendor, family, model
    and stepping numbers (a virtual machine's name, e.g. "AMD EPYC", hides the generation); else
    ``platform.processor()``, else the architecture. Training is bit-reproducible on one CPU model, not
    across models."""
    fields: dict[str, str] = {}
    try:
        for line in Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if not sep and fields:  # the end of the first processor's block
                break
            fields.setdefault(key.strip(), " ".join(value.split()))
    except OSError:
        pass
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine() or "unknown"
    ids = " ".join(f"{k.split()[-1]} {fields[k]}" for k in ("cpu family", "model", "stepping") if fields.get(k))
    vendor = fields.get("vendor_id", "")
    return f"{name} ({' '.join(x for x in (vendor, ids) if x)})" if vendor or ids else name


def machine_info(**versions: str) -> dict:
    """Where a run ran: ``{"cpu": cpu_model(), "cores": os.cpu_count(), "python": ..., **versions}``
    (versions: e.g. ``tensorflow=tf.__version__``)."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(), **versions}


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written); the file
    gets the usual ``0o666 & ~umask`` mode, not mkstemp's private 0o600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written ``tmp_dir`` into place as ``final_dir`` (replacing an old one).

    The old folder is first renamed aside; if the second rename fails, it is moved back, so
    ``final_dir`` is always either the old or the new complete folder.
    """
    final_dir = Path(final_dir)
    old = None
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old.{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final_dir, old)
    try:
        os.replace(tmp_dir, final_dir)
    except BaseException:
        if old is not None and not final_dir.exists():
            os.replace(old, final_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sha256_files(paths, extra: str = "") -> str:
    """A content hash over files (name and bytes, in the given order) and an extra string."""
    h = hashlib.sha256(extra.encode())
    for p in paths:
        p = Path(p)
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def cpp_identifier(name: str, prefix: str = "l_") -> str:
    """A valid, non-reserved C++ identifier from any user-supplied name.

    Every character outside ``[A-Za-z0-9_]`` becomes ``_``; double underscores collapse (they are
    reserved in C++); a leading digit, a leading underscore or a keyword gets ``prefix``.
    """
    text = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    text = re.sub(r"_+", "_", text)
    if not text or text == "_":
        text = "unnamed"
    if text[0].isdigit() or text[0] == "_" or text in CPP_KEYWORDS:
        text = prefix + text.lstrip("_")
    return text


def check_output_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check it is a writable folder; errors name the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"output folder {path} exists and is a file, not a folder")
    for parent in path.parents:  # a file on the way: mkdir's own error would not say which
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(f"output folder {path}: {parent} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"output folder {path} cannot be created: {err.strerror or err}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder {path} is not writable")
    return path

