"""Every transformers load runs offline: no connection and no DNS lookup, even for a name not cached (issue 14).

Sockets are patched to record and refuse every connection and name lookup; the hub's offline flag
starts False, as in a fresh process without HF_HUB_OFFLINE.
"""

import socket

import pytest
import torch

from bench.errors import UserError

transformers = pytest.importorskip("transformers")
NOT_CACHED = "emoe-bench-tests/bert-that-is-not-cached"


@pytest.fixture
def no_network(monkeypatch):
    import huggingface_hub.constants as hub_constants

    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(key, raising=False)  # hub_offline() sets them; monkeypatch restores them
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    attempts = []

    def refuse(what):
        def call(*args, **kwargs):
            attempts.append((what, args[1:3] if what == "connect" else args[:2]))
            raise OSError(f"network disabled in this test ({what})")
        return call

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "gethostbyname", refuse("gethostbyname"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    return attempts


def test_mintrec_default_tokenizer_lookup_makes_no_network_call(no_network):
    from bench.data.mintrec import resolve_tokenizer

    tok, note = resolve_tokenizer(None)  # bert-base-uncased from the cache, or a note saying it is not there
    assert (tok is None) == (note is not None)
    assert no_network == []  # kept first in this file: no earlier hub call of this process has failed yet


def test_local_bert_loads_and_uncached_name_is_one_line_without_network(tmp_path, no_network):
    from bench.nn.bert import load_bert

    config = transformers.BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, vocab_size=50, max_position_embeddings=20)
    torch.manual_seed(0)
    saved = transformers.BertModel(config)
    saved.save_pretrained(tmp_path)
    model = load_bert(str(tmp_path))
    assert model.config.hidden_size == 16
    assert torch.equal(model.embeddings.word_embeddings.weight, saved.embeddings.word_embeddings.weight)
    with pytest.raises(UserError) as e:
        load_bert(NOT_CACHED)
    assert str(e.value).startswith(f"BERT model {NOT_CACHED!r} is neither a local directory nor already in the "
                                   "local Hugging Face cache, and bench never downloads")
    assert no_network == []


def test_hub_offline_sets_the_environment_and_an_already_imported_hub(monkeypatch):
    import os

    import huggingface_hub.constants as hub_constants

    from bench.offline import hub_offline

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    hub_offline()
    assert (os.environ["HF_HUB_OFFLINE"], os.environ["TRANSFORMERS_OFFLINE"]) == ("1", "1")
    assert hub_constants.HF_HUB_OFFLINE is True and hub_constants.is_offline_mode()
