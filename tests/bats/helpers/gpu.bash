# shellcheck shell=bash
# The GPU stand-ins of the GPU suites (gpu.bats, gpu_check.bats): a stub nvidia-smi and a
# fake NVML. Load it after helpers/common:
#   load 'helpers/gpu'

# A stub nvidia-smi that prints a fixture of tests/bats/fixtures/nvidia-smi (and with a
# second argument, exits with it).
# Arguments: fixture file name [status]
smi_prints() {
  make_stub nvidia-smi "cat '${BATS_TEST_DIRNAME}/fixtures/nvidia-smi/$1'; exit ${2:-0}"
}

# Put a fake pynvml on PYTHONPATH, NVML's library on LD_LIBRARY_PATH (nvml_library_present)
# and the real helper under APP_ROOT. The fake
# reports "name;major;minor;mib;mig;count" from FAKE_NVML, sleeps FAKE_NVML_SLEEP
# seconds in nvmlInit, fails there as the real one does without a driver when
# FAKE_NVML_NO_DRIVER is set, and appends a line to FAKE_NVML_LOG at every import.
fake_nvml() {
  local dir="${BATS_TEST_TMPDIR}/fake nvml"
  mkdir -p "${dir}"
  cat >"${dir}/pynvml.py" <<'PY'
import os, time
with open(os.environ["FAKE_NVML_LOG"], "a") as log:
    log.write("import\n")
NAME, MAJOR, MINOR, MIB, MIG, COUNT = os.environ["FAKE_NVML"].split(";")
NVML_ERROR_LIBRARY_NOT_FOUND, NVML_ERROR_DRIVER_NOT_LOADED, NVML_DEVICE_MIG_ENABLE = 12, 9, 1
class NVMLError(Exception):
    value = 999
class NVMLError_LibraryNotFound(NVMLError):
    value = NVML_ERROR_LIBRARY_NOT_FOUND
def nvmlInit():
    time.sleep(float(os.environ.get("FAKE_NVML_SLEEP", "0")))
    if os.environ.get("FAKE_NVML_NO_DRIVER"):
        raise NVMLError_LibraryNotFound()
def nvmlShutdown(): pass
def nvmlDeviceGetCount(): return int(COUNT)
def nvmlDeviceGetHandleByIndex(i): return i
def nvmlDeviceGetName(h): return NAME.encode()
def nvmlDeviceGetCudaComputeCapability(h): return int(MAJOR), int(MINOR)
class _Mem: total = int(MIB) * 1024 * 1024
def nvmlDeviceGetMemoryInfo(h): return _Mem()
def nvmlDeviceGetMigMode(h): return int(MIG), int(MIG)
PY
  nvml_library_present
  export PYTHONPATH="${dir}" APP_ROOT="${PROJECT_ROOT}" FAKE_NVML_LOG="${BATS_TEST_TMPDIR}/nvml.log"
  export FAKE_NVML="$1"
}
