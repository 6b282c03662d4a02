"""Print a streamed chat answer as it arrives: the SSE body of /v1/chat/completions on stdin.

Usage: container_curl_key URL -N -d '{"stream": true, ...}' | python3 scripts/lib/chat_stream.py

Writes each content delta to stdout the moment its event arrives, then a newline and one line
with the finish reason and the token counts (from the usage chunk, when the request asked for
it). The last stdin line may be the HTTP status that container_curl_key appends. Status 1, with
one line on stderr, when the status is not 200, an event is an error, or the stream ends
without `data: [DONE]` (a cut stream).
"""

from __future__ import annotations

import json
import sys
from typing import TextIO


def relay(lines: TextIO, out: TextIO) -> str:
    """Write the deltas of an SSE chat stream to out; return the closing summary line."""
    done, finish, usage, status = False, "?", None, "200"
    for raw in lines:
        line = raw.rstrip("\n")
        if line.isdigit():
            status = line
        elif line == "data: [DONE]":
            done = True
        elif line.startswith("data: "):
            event = json.loads(line[6:])
            if "error" in event:
                raise ValueError(f"the stream carried an error: {event['error'].get('message')}")
            usage = event.get("usage") or usage
            for choice in event.get("choices", []):
                out.write(choice.get("delta", {}).get("content") or "")
                finish = choice.get("finish_reason") or finish
            out.flush()
        elif line.startswith("{"):  # a whole JSON error body instead of a stream
            raise ValueError(f"no stream: {line[:300]}")
    if status != "200":
        raise ValueError(f"the server answered status {status}")
    if not done:
        raise ValueError("the stream ended without data: [DONE] (cut)")
    counts = f", prompt {usage['prompt_tokens']} + completion {usage['completion_tokens']} tokens"
    return f"(finish_reason {finish}{counts if usage else ''})"


def main() -> int:
    """CLI: relay stdin to stdout; one line on stderr and status 1 on a bad stream."""
    try:
        summary = relay(sys.stdin, sys.stdout)
    except (ValueError, KeyError) as exc:
        print(f"\nchat_stream: {exc}", file=sys.stderr)
        return 1
    print(f"\n{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
