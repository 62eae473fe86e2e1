"""What real agent clients send to /v1/responses (the shape of a Codex CLI turn): every tool
type, the developer role, reasoning/include/client_metadata/prompt_cache_key, store: false, and
the input items they send back; the mock ignores what it cannot use and ends a tool loop with
text."""

import json
import unittest

from harness import Server, assert_error_envelope, get
from openai_client import post_json, responses_from_events, sse_events

MODEL = "ringcast-mock"

TOOLS = [
    {"type": "function", "name": "exec_command", "description": "Runs a command", "strict": False,
     "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
    {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.", "tools": [
        {"type": "function", "name": "close_agent", "strict": False, "parameters": {"type": "object"}}]},
    {"type": "web_search", "external_web_access": False},
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "x"}},
    {"type": "local_shell"},
]


def agent_request(user_text, **kw):
    body = {
        "model": MODEL, "stream": True, "store": False, "tool_choice": "auto",
        "parallel_tool_calls": True, "reasoning": {"summary": "auto"},
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "thread-1",
        "client_metadata": {"turn_id": "t1"}, "tools": TOOLS,
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": user_text}]},
        ],
    }
    body.update(kw)
    return body


def stream(port, body):
    r = post_json(port, "/v1/responses", body)
    assert r.status == 200, (r.status, r.body)
    return [(t, json.loads(d)) for t, d in sse_events(r.body)]


class AgentRequests(unittest.TestCase):
    def test_codex_shaped_turn_streams_and_echoes_tools(self):
        with Server() as srv:
            events = stream(srv.port, agent_request("Say hello"))
            summary = responses_from_events(events)
            self.assertEqual(events[-1][0], "response.completed")
            self.assertEqual(summary["calls"], [])
            final = events[-1][1]["response"]
            self.assertEqual(final["tools"][1:], TOOLS[1:])  # other types exactly as sent
            self.assertEqual(final["tools"][0]["name"], "exec_command")
            self.assertEqual(final["reasoning"], {"effort": None, "summary": "auto"})
            self.assertEqual(final["prompt_cache_key"], "thread-1")
            self.assertFalse(final["store"])
            # The same text as a plain request with that user turn: the rest was ignored.
            plain = post_json(srv.port, "/v1/responses", {"model": MODEL, "input": "Say hello"}).json()
            self.assertEqual(summary["text"], plain["output"][0]["content"][0]["text"])

    def test_tool_loop_ends_with_text(self):
        with Server() as srv:
            first = responses_from_events(stream(srv.port, agent_request("please run exec_command")))
            self.assertEqual([name for name, _ in first["calls"]], ["exec_command"])
            call_args = first["calls"][0][1]
            self.assertIn("cmd", json.loads(call_args))
            # The agent runs it and sends everything back (store is false): reasoning, the call,
            # its output, items of other tools; the mock now answers in text.
            body = agent_request("please run exec_command")
            body["input"] += [
                {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"},
                {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": call_args},
                {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
                {"type": "custom_tool_call", "call_id": "call_2", "name": "apply_patch", "input": "*** Begin"},
                {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Done"},
                {"type": "local_shell_call", "call_id": "call_3", "status": "completed",
                 "action": {"type": "exec", "command": ["ls"]}},
                {"type": "local_shell_call_output", "id": "call_3", "output": "b.txt"},
            ]
            second = responses_from_events(stream(srv.port, body))
            self.assertEqual(second["calls"], [])
            self.assertEqual(second["status"], "completed")
            self.assertTrue(second["text"])

    def test_not_stored_response_cannot_be_continued(self):
        with Server() as srv:
            r = post_json(srv.port, "/v1/responses", {"model": MODEL, "input": "hi", "store": False})
            self.assertEqual(r.status, 200)
            rid = r.json()["id"]
            self.assertEqual(post_json(srv.port, "/v1/responses", {"model": MODEL, "input": "hi"}).status, 200)
            for stream_flag in (False, True):
                follow = post_json(srv.port, "/v1/responses", {
                    "model": MODEL, "input": "again", "previous_response_id": rid, "stream": stream_flag})
                err = assert_error_envelope(self, follow, 400, "previous_response_not_found")
                self.assertEqual(err["param"], "previous_response_id")

    def test_stored_items_list_what_was_sent(self):
        with Server() as srv:
            body = {"model": MODEL, "input": [
                {"type": "message", "role": "developer", "content": "rules"},
                {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}]},
                {"type": "message", "role": "user", "content": "hi"}]}
            rid = post_json(srv.port, "/v1/responses", body).json()["id"]
            page = get(srv.port, f"/v1/responses/{rid}/input_items?order=asc").json()["data"]
            self.assertEqual([i["type"] for i in page], ["message", "reasoning", "message"])
            self.assertEqual(page[0]["role"], "developer")
            self.assertEqual(page[1]["summary"], [{"type": "summary_text", "text": "thinking"}])
            self.assertTrue(page[1]["id"].startswith("item_"))

    def test_bad_tools_and_members_are_still_refused(self):
        with Server() as srv:
            cases = [
                ({"tools": [{"type": "namespace", "name": "n"}]}, "tools[0].tools"),
                ({"tools": [{"type": "mcp"}]}, "tools[0].server_label"),
                ({"reasoning": {"effort": "huge"}}, "reasoning.effort"),
                ({"include": "reasoning.encrypted_content"}, "include"),
                ({"input": [{"type": "reasoning"}]}, "input[0].summary"),
                ({"input": [{"type": "wizardry"}]}, "input[0].type"),
            ]
            for extra, param in cases:
                body = {"model": MODEL, "input": "hi", **extra}
                err = assert_error_envelope(self, post_json(srv.port, "/v1/responses", body), 400)
                self.assertEqual(err["param"], param, extra)


if __name__ == "__main__":
    unittest.main()
