"""abacosamples/wc: count the words of the message.

Prints ``Number of words is: N`` and sends ``N`` (ASCII digits, readable with curl) as the execution's
result. Text and JSON messages are counted from MSG (a JSON message is the Python str() of the value);
a binary message is read from the FIFO and counted as UTF-8 text. Without a results socket (run
outside Abaco) it only prints.
"""
import sys

from abaco_sdk import AbacoError, get_binary_message, get_context, send_bytes_result


def main() -> int:
    context = get_context()
    if context.raw_message is None and context.content_type == "application/octet-stream":
        text = get_binary_message().decode("utf-8", "replace")
    else:
        text = context.raw_message or ""
    count = len(text.split())
    print(f"Number of words is: {count}", flush=True)
    try:
        send_bytes_result(str(count).encode())
    except AbacoError as e:
        print(f"wc: no result sent: {e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
