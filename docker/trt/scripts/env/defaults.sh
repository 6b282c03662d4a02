# shellcheck shell=bash
# trt stack, last env file: plain defaults for what is still unset (source "default").

# Set the remaining defaults.
# Globals:   CHAT_MODEL_PATH, TOOL_MODEL_PATH, SERVED_MODEL_NAME, CHAT_ENGINE_PORT,
#            TENSOR_PARALLEL_SIZE (set unless set); CHAT_MODEL (read)
trt_defaults() {
  settings_default CHAT_MODEL_PATH /opt/models/chat default
  settings_default TOOL_MODEL_PATH /opt/models/tool default
  settings_default SERVED_MODEL_NAME "${CHAT_MODEL:-chat}" default
  settings_default CHAT_ENGINE_PORT 8001 default
  settings_default TENSOR_PARALLEL_SIZE 1 default
}

trt_defaults
