"""The transformer family: a small decoder-only language model in torch, trained on the crawled corpus.

Pre-norm blocks of causal self-attention and an MLP over learned token and
position embeddings (the GPT-2 shape, as in nanoGPT), with a begin-of-document
token (id V) so the first token has a law of its own. Each generation either
trains from scratch or fine-tunes the lab's previous generation (Shumailov et
al. 2024 fine-tune OPT-125m generation after generation). A prior toward a
reference model is an L2 penalty on the distance to its weights.

Randomness: initialisation, batch order and nothing else, all from a
``torch.Generator`` seeded from the trainer's stream; the thread count is
fixed during every call, so the same seed gives the same weights on a CPU.
Sampling reads one uniform per token from the noise rows, like every other
token model, so the web stays shard-invariant.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
from typing import Literal

import numpy as np
from pydantic import Field

import simweb.plugins as plugins
from simweb.errors import SimwebError
from simweb.sampling import shape_probs

__all__ = ["TransformerModel"]


@functools.cache
def _torch():
    """torch and the network class, imported on first use: only labs that train a transformer pay for torch."""
    try:
        import torch
        from torch import nn
    except ImportError:
        raise SimwebError("the transformer family needs torch: pip install 'simweb[torch]'") from None

    class Block(nn.Module):
        def __init__(self, width: int, heads: int):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
            self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

        def forward(self, x, mask):
            h = self.ln1(x)
            x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
            return x + self.mlp(self.ln2(x))

    class Net(nn.Module):
        def __init__(self, vocab: int, context: int, width: int, heads: int, layers: int):
            super().__init__()
            self.tok = nn.Embedding(vocab + 1, width)  # + the begin-of-document token
            self.pos = nn.Embedding(context, width)
            self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
            self.ln = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab, bias=False)
            self.register_buffer("mask", torch.triu(torch.ones(context, context, dtype=torch.bool), 1),
                                 persistent=False)

        def forward(self, idx):
            t = idx.shape[1]
            x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
            for block in self.blocks:
                x = block(x, self.mask[:t, :t])
            return self.head(self.ln(x))

    return torch, nn, Net


@contextlib.contextmanager
def _threads(n: int):
    torch = _torch()[0]
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@plugins.model("transformer")
class TransformerModel:
    class Config(plugins.PluginConfig):
        """A small decoder-only transformer (torch)."""

        layers: int = Field(2, ge=1, le=48)
        width: int = Field(64, ge=8, le=4096)  # embedding width; a multiple of heads
        heads: int = Field(4, ge=1, le=64)
        epochs: int = Field(2, ge=1, le=1000)  # passes over the training set per generation
        batch_size: int = Field(64, ge=1, le=65_536)
        lr: float = Field(3e-3, gt=0.0, le=1.0)  # AdamW learning rate
        init: Literal["scratch", "finetune"] = "scratch"  # finetune: start from the lab's previous generation
        device: Literal["auto", "cpu", "cuda"] = "auto"
        threads: int = Field(1, ge=1, le=256)  # torch threads during fit and sampling: fixed, for determinism

        def check(self, scenario, where: str, fail) -> None:
            if self.width % self.heads:
                fail(f"{where}.width", f"expected a multiple of heads ({self.heads}), got {self.width}")
            if importlib.util.find_spec("torch") is None:
                fail(f"{where}.family", "the transformer family needs torch, which is not installed: "
                     "pip install 'simweb[torch]'")

    languages = ("markov",)
    family = "transformer"
    is_tokens = True

    @classmethod
    def memory_bytes(cls, cfg, scenario) -> int:
        """Peak bytes of one model (for :mod:`simweb.cost`): float32 parameters, gradients and two AdamW moments
        (16 per parameter) and two held states (8), plus the largest working set of a training step (activations
        of every layer and the logits), of scoring 512 documents, or of sampling 1024 at once."""
        from simweb.cost import transformer_params

        V, L = scenario.language.vocab_size, scenario.language.doc_length
        B, w, h = cfg.batch_size, cfg.width, cfg.heads
        params = transformer_params(V, L, w, cfg.layers)
        train = 4 * cfg.layers * (20 * B * L * w + 3 * B * h * L * L) + 12 * B * L * V  # kept for backward
        score = 20 * 512 * L * V + 4 * 512 * L * 8 * w  # float32 and float64 log-softmax; one layer's activations
        sample = 4 * 1024 * L * 8 * w + 24 * 1024 * V  # one layer's activations over the prefix; float64 probs
        return 24 * params + max(train, score, sample)

    @staticmethod
    def resources(cfg, cluster: dict) -> dict[str, float]:
        """A trainer on cuda reserves a GPU ("auto": when the cluster has one); cuda without one is refused."""
        gpus = cluster.get("gpus", 0) or 0
        if cfg.device == "cuda" and gpus == 0 and not _torch()[0].cuda.is_available():
            raise SimwebError("model.device: 'cuda' was asked for, but no CUDA GPU is available here or on the "
                              "cluster; use device = 'auto' or 'cpu'")
        return {"gpus": 1.0 if cfg.device == "cuda" or (cfg.device == "auto" and gpus > 0) else 0.0}

    def __init__(self, *, vocab_size: int, doc_length: int, cfg):
        torch = _torch()[0]
        self.vocab_size, self.doc_length, self.cfg = int(vocab_size), int(doc_length), cfg
        self.device = torch.device("cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
                                   else "cpu")
        self.net = None

    @classmethod
    def from_config(cls, cfg, language) -> "TransformerModel":
        return cls(vocab_size=language.vocab_size, doc_length=language.doc_length, cfg=cfg)

    def _new_net(self, generator):
        torch, _, Net = _torch()
        c = self.cfg
        net = Net(self.vocab_size, self.doc_length, c.width, c.heads, c.layers)
        with torch.no_grad():  # seeded initialisation: N(0, 0.02) weights, zero biases (GPT-2)
            for name, p in net.named_parameters():
                if p.dim() >= 2:
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
                elif name.endswith("bias"):
                    p.zero_()
        return net.to(self.device)

    def _inputs(self, docs):
        torch = _torch()[0]
        bos = torch.full((docs.shape[0], 1), self.vocab_size, dtype=torch.long, device=docs.device)
        return torch.cat([bos, docs[:, :-1]], dim=1)

    # ------------------------------------------------------------ fit
    def fit(self, docs: np.ndarray, *, rng: np.random.Generator, prior=None) -> "TransformerModel":
        """Train for ``epochs`` passes of AdamW over the corpus (continuing from loaded weights when fine-tuning)."""
        torch, nn, _ = _torch()
        c = self.cfg
        seed = int(rng.integers(2**62))
        gen = torch.Generator().manual_seed(seed)
        with _threads(c.threads):
            if self.net is None:
                self.net = self._new_net(gen)
            net = self.net
            data = torch.as_tensor(np.asarray(docs, dtype=np.int64), device=self.device)
            ref = None
            if prior is not None and prior.strength > 0 and prior.reference is not None:
                ref = {k: torch.as_tensor(v, device=self.device) for k, v in prior.reference.items()}
            opt = torch.optim.AdamW(net.parameters(), lr=c.lr, weight_decay=0.0)
            net.train()
            n = len(data)
            for _ in range(c.epochs):
                order = torch.randperm(n, generator=gen).to(self.device)
                for lo in range(0, n, c.batch_size):
                    batch = data[order[lo:lo + c.batch_size]]
                    logits = net(self._inputs(batch))
                    loss = nn.functional.cross_entropy(logits.reshape(-1, self.vocab_size), batch.reshape(-1))
                    if ref is not None:  # pull toward the reference: an L2 prior, strength per training token
                        loss = loss + prior.strength / (n * self.doc_length) * sum(
                            ((p - ref[k]) ** 2).sum() for k, p in net.named_parameters())
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            net.eval()
        return self

    # ------------------------------------------------------------ score and sample
    def token_log_prob(self, docs: np.ndarray, chunk: int = 512) -> np.ndarray:
        torch = _torch()[0]
        net = self._require()
        out = np.empty(np.shape(docs), dtype=np.float64)
        with _threads(self.cfg.threads), torch.no_grad():
            for lo in range(0, len(docs), chunk):
                batch = torch.as_tensor(np.asarray(docs[lo:lo + chunk], dtype=np.int64), device=self.device)
                logp = torch.log_softmax(net(self._inputs(batch)).double(), dim=-1)
                out[lo:lo + chunk] = logp.gather(2, batch.unsqueeze(-1)).squeeze(-1).cpu().numpy()
        return out

    def log_prob(self, docs: np.ndarray) -> np.ndarray:
        return self.token_log_prob(docs).sum(axis=1)

    def next_token_probs(self, docs: np.ndarray) -> np.ndarray:
        """The model's law of the next token at every position of ``docs``, shape (n, L, V)."""
        torch = _torch()[0]
        net = self._require()
        with _threads(self.cfg.threads), torch.no_grad():
            batch = torch.as_tensor(np.asarray(docs, dtype=np.int64), device=self.device)
            return torch.softmax(net(self._inputs(batch)).double(), dim=-1).cpu().numpy()

    def sample(self, n: int, *, rng: np.random.Generator, temperature: float = 1.0, top_p: float = 1.0,
               watermark=None) -> np.ndarray:
        return self.draw(self.noise(n, rng=rng), temperature=temperature, top_p=top_p, watermark=watermark)

    def noise(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        return rng.random((self.doc_length, n)).T

    def draw(self, noise: np.ndarray, *, temperature: float = 1.0, top_p: float = 1.0, watermark=None,
             chunk: int = 1024) -> np.ndarray:
        """Documents written token by token, each token by inverse CDF of one uniform of its noise row."""
        torch = _torch()[0]
        net = self._require()
        u = np.ascontiguousarray(np.asarray(noise).T)  # (L, n)
        n, V, L = u.shape[1], self.vocab_size, self.doc_length
        out = np.empty((n, L), dtype=np.uint16)
        green = None
        if watermark is not None:
            from simweb.watermark import green_list

            green = green_list(watermark.key, watermark.gamma, V)
        with _threads(self.cfg.threads), torch.no_grad():
            for lo in range(0, n, chunk):
                m = min(chunk, n - lo)
                idx = torch.full((m, 1), V, dtype=torch.long, device=self.device)
                prev = np.full(m, V, dtype=np.int64)
                for t in range(L):
                    probs = torch.softmax(net(idx)[:, -1].double(), dim=-1).cpu().numpy()
                    if (temperature, top_p) != (1.0, 1.0):
                        probs = shape_probs(probs, temperature=temperature, top_p=top_p)
                    if green is not None:
                        probs = probs * np.where(green[prev], math.exp(watermark.delta), 1.0)
                    cdf = np.cumsum(probs, axis=1)
                    x = (cdf < (u[t, lo:lo + m] * cdf[:, -1])[:, None]).sum(axis=1)
                    x = np.minimum(x, V - 1)
                    out[lo:lo + m, t] = x
                    prev = x
                    idx = torch.cat([idx, torch.as_tensor(x, device=self.device)[:, None]], dim=1)
        return out

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self._require().state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> "TransformerModel":
        torch = _torch()[0]
        net = self._new_net(torch.Generator().manual_seed(0)) if self.net is None else self.net
        net.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})
        net.eval()
        self.net = net
        return self

    def _require(self):
        if self.net is None:
            raise RuntimeError("the transformer has not been fitted")
        return self.net
