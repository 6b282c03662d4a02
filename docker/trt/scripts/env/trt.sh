# shellcheck shell=bash
# trt stack, first env file (sourced by bootstrap.sh after GPU detection and the
# memory fractions): the engine directory and, with chat deployed, what the engine
# was built with, read from TRT_ENGINE_DIR/config.json (build_config,
# pretrained_config) with source "engine config":
#   CHAT_MAX_LEN ← max_seq_len   MAX_NUM_SEQS ← max_batch_size
#   MAX_NUM_BATCHED_TOKENS ← max_num_tokens   TENSOR_PARALLEL_SIZE ← mapping.tp_size
#   TRT_MAX_INPUT_LEN ← max_input_len   TRT_MAX_OUTPUT_LEN ← max_output_len (when present)
#   CHAT_MODEL_QUANT ← quantization.quant_algo (for the summary line and --explain)
# A user value above the engine's limit is an error (the engine cannot serve it), and
# so is a TENSOR_PARALLEL_SIZE other than the engine's (its rank count is fixed).
# TRT_KV_FREE_GPU_FRAC defaults to CHAT_GPU_FRAC (source "deploy mode").

# Read config.json of the engine: print NAME=value lines (the limits above, then
# CHAT_MODEL_QUANT when the engine is quantized).
# Arguments: path of config.json
# Outputs:   the lines on stdout; the reason on stdout when the file is unreadable
# Returns:   1 when the file is not a readable engine config
_trt_read_engine_config() {
  timeout 30 python3 -c '
import json, re, sys
try:
    with open(sys.argv[1], encoding="utf-8") as fh:
        cfg = json.load(fh)
    build = cfg.get("build_config") or {}
    pretrained = cfg.get("pretrained_config") or {}
    mapping = pretrained.get("mapping") or {}
    quant = (pretrained.get("quantization") or {}).get("quant_algo")
except (OSError, ValueError, AttributeError) as exc:
    sys.exit(f"not a readable engine config: {exc}")
pairs = [("CHAT_MAX_LEN", build.get("max_seq_len")), ("MAX_NUM_SEQS", build.get("max_batch_size")),
         ("MAX_NUM_BATCHED_TOKENS", build.get("max_num_tokens")),
         ("TRT_MAX_INPUT_LEN", build.get("max_input_len")),
         ("TRT_MAX_OUTPUT_LEN", build.get("max_output_len")),
         ("TENSOR_PARALLEL_SIZE", mapping.get("tp_size"))]
for name, value in pairs:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        print(f"{name}={value}")
if isinstance(quant, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", quant):
    print(f"CHAT_MODEL_QUANT={quant}")
' "$1" 2>&1
}

# Set the engine settings; check user values against the engine's build limits.
# Globals:   TRT_ENGINE_DIR, TRT_KV_FREE_GPU_FRAC, CHAT_MODEL_QUANT and the limits above
#            (set unless the user set them); DEPLOY_CHAT, CHAT_GPU_FRAC (read)
# Outputs:   one error per value the engine cannot serve, or for an unreadable config.json
# Returns:   1 on such an error
trt_engine_settings() {
  settings_default TRT_ENGINE_DIR /opt/engines/trt-chat default
  [[ "${DEPLOY_CHAT:-0}" == 1 ]] || return 0
  settings_default TRT_KV_FREE_GPU_FRAC "${CHAT_GPU_FRAC:-0.90}" "deploy mode"
  local config="${TRT_ENGINE_DIR}/config.json" out status=0
  [[ -f "${config}" ]] || return 0 # start_server.sh's engine check names what is missing
  out="$(_trt_read_engine_config "${config}")" || status=$?
  if ((status != 0)); then
    log_err "[trt]" "${config}: ${out##*$'\n'}; rebuild the image with a complete engine"
    return 1
  fi
  local name limit ok=0
  while IFS='=' read -r name limit; do
    [[ -n "${name}" ]] || continue
    if [[ "${name}" == CHAT_MODEL_QUANT ]]; then
      settings_default CHAT_MODEL_QUANT "${limit}" "engine config"
      continue
    fi
    if [[ -n "${!name:-}" && "${name}" == TENSOR_PARALLEL_SIZE && "${!name}" != "${limit}" ]]; then
      log_err "[trt]" "TENSOR_PARALLEL_SIZE '${!name}' does not match the engine, which was built for ${limit} rank(s) (tp_size); unset it (the engine decides)"
      ok=1
      continue
    fi
    if [[ -n "${!name:-}" ]] && { [[ ! "${!name}" =~ ^[1-9][0-9]*$ ]] || ((${!name} > limit)); }; then
      log_err "[trt]" "${name} '${!name}' is not valid for this engine: it was built for at most ${limit}; use a whole number from 1 to ${limit} (or unset it)"
      ok=1
      continue
    fi
    settings_default "${name}" "${limit}" "engine config"
  done <<<"${out}"
  return "${ok}"
}

trt_engine_settings
