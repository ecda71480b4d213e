"""Writers: an OpenAI-compatible endpoint, the template writer, and writer failures counted, not raised."""

from __future__ import annotations

import pytest

from algorithms.writers import OpenAIWriter, TemplateWriter, WriterConfig, WriterRequest, build_writer
from siri_bench.config import OpenAIConfig
from tests.policy.test_openai_backend import FakeServer


def test_openai_writer_sends_the_prompt_and_counts_tokens():
    with FakeServer() as server:
        cfg = WriterConfig(kind="openai", max_new_tokens=64, openai=OpenAIConfig(base_url=server.url, model="teacher",
                                                                                  timeout_s=5, max_retries=0))
        writer = build_writer(cfg)
        assert isinstance(writer, OpenAIWriter)
        (out,) = writer.write([WriterRequest("reflection", "Why did the attempt fail?", seed=3)])
        writer.close()
    assert out.error is None and out.text == "<think>ok</think><action>look</action>"
    assert (out.prompt_tokens, out.completion_tokens) == (11, 5)      # the server's usage
    body = server.bodies[-1]
    assert body["messages"] == [{"role": "user", "content": "Why did the attempt fail?"}]
    assert body["temperature"] == 0 and body["max_tokens"] == 64 and body["model"] == "teacher"


def test_unreachable_writer_gives_errors_not_exceptions():
    cfg = WriterConfig(kind="openai", openai=OpenAIConfig(base_url="http://127.0.0.1:9/v1", timeout_s=1, max_retries=0))
    outs = build_writer(cfg).write([WriterRequest("memory", "a"), WriterRequest("memory", "b")])
    assert len(outs) == 2 and all(o.error for o in outs) and all(o.text == "" for o in outs)


def test_template_writer_fills_slots_and_names_missing_purposes():
    writer = TemplateWriter({"reflection": "Reflection: {task} failed at {missing}."})
    ok, missing = writer.write([WriterRequest("reflection", "p", {"task": "open the door"}), WriterRequest("skills", "p")])
    assert ok.text == "Reflection: open the door failed at ." and ok.error is None
    assert missing.error is not None and "skills" in missing.error


def test_bad_templates_are_config_errors_naming_the_problem():
    from siri_bench.config import build_config
    from siri_bench.errors import ConfigError

    def reflexion_with(templates):
        return build_config({"name": "x", "env": {"id": "siri_bench/ALFWorld-v0"},
                             "algorithm": {"name": "reflexion", "writer": {"kind": "template", "templates": templates}}})

    with pytest.raises(ConfigError, match=r"algorithm.writer.templates.*'reflection' template is not a format string"):
        reflexion_with({"reflection": "Reflection: {task"})
    with pytest.raises(ConfigError, match=r"unknown purpose\(s\) \['reflections'\]"):
        reflexion_with({"reflections": "x"})
    with pytest.raises(ConfigError, match=r"slots \['0'\]"):
        reflexion_with({"reflection": "Reflection: {0}"})
    ok = reflexion_with({"reflection": "Reflection: {task} {{literal}}"})
    assert ok.algorithm_params().writer.templates["reflection"] == "Reflection: {task} {{literal}}"
