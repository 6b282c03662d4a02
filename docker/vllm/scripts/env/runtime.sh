# shellcheck shell=bash
# vllm stack, first env file (sourced by bootstrap.sh after GPU detection): what the
# image's Python holds, asked in one short python3 call that imports nothing heavy:
#   FLASHINFER_AVAILABLE  1 when the flashinfer package is installed (found with
#                         importlib.util.find_spec, never imported: an import pulls
#                         in torch and costs seconds); a user value wins (0 = don't use it)
#   CHAT_MODEL_QUANT      the chat model's quantization_config.quant_method from
#                         CHAT_MODEL_PATH/config.json, for the summary and --explain.
#                         It is not passed to vLLM: vLLM reads config.json itself and
#                         picks the fastest kernel (awq → awq_marlin); an explicit
#                         --quantization awq would force the slow one. CHAT_QUANTIZATION
#                         stays the user's override.

# Ask Python about FlashInfer and the baked chat model's quantization; set both.
# Globals:   FLASHINFER_AVAILABLE, CHAT_MODEL_QUANT (set unless the user set them),
#            CHAT_MODEL_PATH, DEPLOY_CHAT (read)
# Outputs:   a warning when config.json names a quantization that is not one word
# Returns:   1 when python3 cannot answer
vllm_runtime_probe() {
  local config="" out status=0 line flashinfer="" quant=""
  if [[ "${DEPLOY_CHAT:-0}" == 1 ]]; then
    config="${CHAT_MODEL_PATH:-/opt/models/chat}/config.json"
  fi
  out="$(timeout 30 python3 -c '
import importlib.util, json, sys
print("flashinfer=%d" % (importlib.util.find_spec("flashinfer") is not None))
quant = ""
if sys.argv[1]:
    try:
        with open(sys.argv[1], encoding="utf-8") as fh:
            quant = (json.load(fh).get("quantization_config") or {}).get("quant_method") or ""
    except (OSError, ValueError, AttributeError):
        pass
print("quant=%s" % str(quant).replace("\n", " "))
' "${config}" 2>&1)" || status=$?
  if ((status != 0)); then
    log_err "[vllm]" "python3 could not check the image's packages (status ${status}): ${out##*$'\n'}"
    return 1
  fi
  while IFS= read -r line; do
    case "${line}" in
      flashinfer=*) flashinfer="${line#flashinfer=}" ;;
      quant=*) quant="${line#quant=}" ;;
    esac
  done <<<"${out}"
  settings_default FLASHINFER_AVAILABLE "${flashinfer:-0}" image
  [[ -n "${quant}" ]] || return 0
  if [[ ! "${quant}" =~ ^[A-Za-z0-9_.-]+$ ]]; then
    log_warn "[vllm]" "${config} names quantization '${quant//[![:print:]]/?}', not one word; ignored (set CHAT_QUANTIZATION to force one)"
    return 0
  fi
  settings_default CHAT_MODEL_QUANT "${quant}" "model config"
}

vllm_runtime_probe
