"""Causal language models: token calibration, block-by-block inputs, the QUBO's energy as
the token-summed output error, language metrics, the byte corpus loader."""

import gzip

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import annealq
from annealq.blocks import BlockInputs, find_blocks, input_source
from annealq.capture import linear_layers
from annealq.data.text import load_text
from annealq.formulation import formulate_layer
from annealq.statistics import InputStatistics


class TinyBlock(nn.Module):
    """A user's pre-norm block: separate q, k, v, o and a GELU MLP."""

    def __init__(self, d):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.up, self.down = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.o(
            F.scaled_dot_product_attention(self.q(h), self.k(h), self.v(h), is_causal=True)
        )
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class TinyLM(nn.Module):
    def __init__(self, vocabulary=16, d=6, depth=2):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, d)
        self.layers = nn.ModuleList(TinyBlock(d) for _ in range(depth))
        self.head = nn.Linear(d, vocabulary, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens):
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    tokens = np.random.default_rng(0).integers(0, 16, size=(8, 12))
    return TinyLM().eval(), tokens


def test_a_users_token_model_quantizes_through_the_api(tiny):
    model, tokens = tiny
    held_out = np.random.default_rng(1).integers(0, 16, size=(5, 12))
    result = annealq.quantize(
        model,
        torch.as_tensor(tokens),
        bits=3,
        solver="kbest",
        cache=False,
        quiet=True,
        evaluation=held_out,
    )
    names = [layer.name for layer in result.layers]
    assert names == [f"layers.{b}.{p}" for b in (0, 1) for p in ("q", "k", "v", "o", "up", "down")]
    assert all(layer.energy <= layer.rtn_energy * (1 + 1e-9) for layer in result.layers)
    reasons = {e["name"]: e["reason"] for e in result.report["not_quantized"]}
    assert "tied to embed" in reasons["head"]
    assert "embedding" in reasons["embed"] and "normalization" in reasons["layers.0.norm1"]
    language = result.report["language"]
    assert language["windows"] == 5 and language["predicted_tokens"] == 5 * 11
    assert language["quantized"]["kl"] >= 0 and 0 <= language["quantized"]["top1"] <= 1
    low, high = language["float"]["perplexity_interval"]
    assert low <= language["float"]["perplexity"] <= high
    assert torch.equal(model.head.weight, result.model.head.weight)  # tied head in float


def test_energy_is_the_squared_output_error_over_calibration_tokens(tiny):
    model, tokens = tiny
    result = annealq.quantize(model, tokens, bits=2, method="gptq", quiet=True)
    quantized = result.model
    for layer in result.layers[6:9]:  # block 1's up-stream layers: X̂ differs from X
        X = _inputs(model, layer.name, tokens)
        X_hat = _inputs(quantized, layer.name, tokens)
        float_layer = model.get_submodule(layer.name)
        W, b = float_layer.weight.detach().double(), float_layer.bias.detach().double()
        Q = torch.as_tensor(layer.int_weight * np.asarray(layer.weight_step).reshape(-1, 1))
        b_q = torch.as_tensor(layer.int_bias * np.asarray(layer.bias_step))
        direct = ((X @ W.T + b - X_hat @ Q.T - b_q) ** 2).sum(0).numpy()  # per neuron
        assert not torch.equal(X, X_hat)
        assert np.isclose(layer.energy, direct.sum(), rtol=1e-8)
        # the QUBO built from the moments: every state's energy is that neuron's error
        stats = InputStatistics.from_arrays(X_hat.numpy(), X.numpy())
        lq = formulate_layer(
            W.numpy(), b.numpy(), stats.inputs, bits=2, float_inputs=stats.float_inputs
        )
        rng = np.random.default_rng(0)
        x, x_hat, w, b_float = X.numpy(), X_hat.numpy(), W.numpy(), b.numpy()
        for i in (0, 3):
            u = {v: int(rng.integers(2)) for v in lq.bqm(i).variables}
            w_row, bias = lq.dequantize(i, u)
            error = float(((x @ w[i] + b_float[i] - x_hat @ w_row - bias) ** 2).sum())
            assert np.isclose(lq.bqm(i).energy(u), error, rtol=1e-8)


def test_blocks_are_carried_forward_once_and_q_k_v_share_one_gram(tiny):
    model, tokens = tiny
    layers = linear_layers(model, tokens)
    assert find_blocks(model, tokens[:1]) == ["layers.0", "layers.1"]
    source = input_source(model, layers, tokens)
    assert isinstance(source, BlockInputs)
    calls = []
    model.layers[0].register_forward_hook(lambda *a: calls.append(1))
    X_hats = [source.rows(layer, *source.inputs(model, name, layer))[0] for name, layer in layers]
    assert X_hats[0].statistics is X_hats[1].statistics is X_hats[2].statistics  # q, k, v
    assert X_hats[3].statistics is not X_hats[0].statistics
    assert X_hats[0].shape == (8 * 12, 6)  # rows are tokens
    assert len(calls) <= 6  # one float pass, a partial pass per group, one carry: not per layer


def test_multihead_attention_is_refused_in_one_line():
    model = nn.Sequential(nn.Linear(4, 4))
    model.attention = nn.MultiheadAttention(4, 2)
    with pytest.raises(ValueError, match="nn.MultiheadAttention") as info:
        annealq.quantize(model, np.zeros((3, 4)), bits=4, method="rtn", quiet=True)
    assert "\n" not in str(info.value)


def test_text_loader_checks_the_corpus_and_reads_any_text(tmp_path):
    for name in ("pystdlib_train.txt.gz", "pystdlib_test.txt.gz"):
        with gzip.open(tmp_path / name, "wb") as stream:
            stream.write(b"print('not the corpus')\n")
    with pytest.raises(ValueError, match="is not the recorded pystdlib_train.txt.gz"):
        load_text("pystdlib", data_dir=tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "wiki.train.raw").write_bytes(b"a" * 100)
    (tmp_path / "mine" / "wiki.test.raw").write_bytes(b"b" * 40)
    data = load_text(path=tmp_path / "mine")
    assert len(data.train) == 100 and data.windows(16).shape == (2, 16)
    assert data.calibration(4, context=16, seed=1).max() == ord("a")


def _inputs(model, name, tokens):
    captured = []
    handle = model.get_submodule(name).register_forward_hook(
        lambda m, i, o: captured.append(i[0].detach().reshape(-1, i[0].shape[-1]).double())
    )
    with torch.no_grad():
        model(torch.as_tensor(tokens))
    handle.remove()
    return captured[0]


def test_cli_quantizes_a_text_folders_lm_and_prints_perplexity(tmp_path, monkeypatch, capsys):
    from annealq import cli
    from annealq.data import transformer

    folder = tmp_path / "text"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(bytes(range(32, 127)) * 40)
    monkeypatch.setenv("ANNEALQ_MODELS", str(tmp_path / "models"))
    monkeypatch.setitem(
        transformer.REFERENCE_LMS,
        "mytext",
        transformer.LMConfig(width=8, blocks=2, heads=2, context=16, steps=3, batch_size=2),
    )
    report = tmp_path / "report.json"
    code = cli.main(
        [
            "quantize",
            "--dataset",
            "mytext",
            "--data-dir",
            str(folder),
            "--arch",
            "transformer",
            "--bits",
            "4",
            "--solver",
            "kbest",
            "--no-cache",
            "--calibration",
            "6",
            "--eval-windows",
            "3",
            "--quiet",
            "--report",
            str(report),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "6 calibration windows of 16 tokens" in out
    for label in ("float", "RTN", "kbest"):
        assert f"  {label:<10} perplexity" in out
    assert report.is_file() and "blocks.1.down" in report.read_text()
    assert cli.main(["quantize", "--dataset", "pystdlib", "--bits", "4"]) == 2
