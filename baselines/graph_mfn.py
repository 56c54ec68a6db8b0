"""Graph-MFN: MFN with a Dynamic Fusion Graph (Zadeh et al., ACL 2018), as thuiar/MMSA defines it.

Sources (facts only, code written here): thuiar/MMSA@36b03b85a4e9b88138f70343e4ef48964e1f5720
``src/MMSA/models/singleTask/Graph_MFN.py`` (model and its DynamicFusionGraph),
thuiar/MMSA@177bc0462a61b355c554812dedd432a21f374130 ``src/MMSA/trains/singleTask/Graph_MFN.py`` (Adam
with lr and weight decay, L1, early stopping) and ``src/MMSA/models/AMIO.py``,
thuiar/MMSA@085d2ccd2a58dc515c8680d83e89ddc96903cf24 ``src/MMSA/config/config_regression.json``
("graph_mfn" block: need_data_aligned=true, need_model_aligned=true, need_normalized=false,
early_stop=8). The DFG is the CMU-MultimodalSDK one (``mmsdk/mmmodelsdk/fusion/dynamic_fusion_graph/
model.py``, stored index id 6445179974; MMSA's copy computes the same). The MMSA 2.2.1 PyPI wheel has
the same model, trainer and config block (checked by unpacking it).

Model. The MFN of :mod:`baselines.mfn` (same LSTHM cells, candidate network ``att2``, gates and head)
with the delta-memory attention replaced by a DFG. At step t each modality's singleton vertex is
``relu(W_m [h_{t-1}; h_t])`` (width = that modality's hidden size; MMSA uses the hidden states where MFN
uses the cells). The DFG (modalities l=0, a=1, v=2, ``k`` = inner_node_dim, ``H`` = dfg_hidden = 100,
MMSA's hard-coded pattern width):

- efficacies ``alpha = E([v_l; v_a; v_v])`` with ``E`` = Linear(sum d, H) -> Linear(H, k) -> Linear(k, 19),
  **no activation anywhere** (raw, unbounded scalars);
- each bimodal/trimodal vertex ``v_S = D_S(cat_{s in proper subsets of S}(alpha_e * v_s))`` with
  ``D_S`` = Linear(in, H) -> Linear(H, k) (no activation); subsets in ``itertools.combinations`` order,
  efficacy indices consumed in that order: la 0-1, lv 2-3, av 4-5, lav 6-11, T 12-18;
- ``T = D_T(cat over all 7 vertices of alpha_e * v)``, used as the attended vector of MFN.

MMSA/SDK quirk, kept by default (``dfg_vertex_training="frozen"``): the bi/trimodal vertex networks live in
a plain Python dict, so they are not registered, never optimised and stay at their random initialisation;
and every vertex network and ``D_T`` starts from one deep-copied ``Linear(H, k)`` (identical initial second
layers). Here they are registered (so they are saved) but frozen; ``"trained"`` optimises them.

Everything that does not depend on the memory (LSTMs, singletons, DFG, candidate) is computed for all
steps at once; only the cell recurrence and the gate loop are sequential.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from itertools import chain, combinations
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from baselines.mfn import MemoryFusionBase, MemoryFusionHParams
from bench.config import PosInt
from bench.data.tensors import DataInfo, Split
from bench.registry import register_method


@dataclass
class GraphMFNHParams(MemoryFusionHParams):
    # MMSA config_regression.json "graph_mfn", MOSI block
    hidden_text: int = 256  # hidden_dims = [text, audio, video]; also the singleton vertex widths
    hidden_audio: int = 32
    hidden_vision: int = 256
    mem_size: int = 300
    inner_node_dim: PosInt = 64  # DFG vertex width k (and the width of the attended vector T)
    dfg_hidden: PosInt = 100  # MMSA hard-codes the pattern/efficacy core as Linear(100, k)
    att2_hidden: int = 32  # "NNConfig"
    att2_dropout: float = 0.0
    gamma1_hidden: int = 128
    gamma1_dropout: float = 0.5
    gamma2_hidden: int = 64
    gamma2_dropout: float = 0.5
    out_hidden: int = 256
    out_dropout: float = 0.0
    av_input: Literal["time_mean", "sequence"] = "sequence"  # need_normalized=false
    # "frozen": MMSA/SDK (vertex networks unregistered -> never trained); "trained": optimise them.
    dfg_vertex_training: Literal["frozen", "trained"] = "frozen"
    # Singleton vertex input [x_{t-1}; x_t]: "hidden" = LSTM hidden states (MMSA); "cell" = the cells, the
    # input of the MFN block the DFG replaces.
    singleton_source: Literal["hidden", "cell"] = "hidden"
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 5e-3


_MOSEI = dict(hidden_text=64, hidden_audio=16, hidden_vision=64, mem_size=300, inner_node_dim=128,
              att2_hidden=32, att2_dropout=0.5, gamma1_hidden=64, gamma1_dropout=0.0, gamma2_hidden=256,
              gamma2_dropout=0.7, out_hidden=128, out_dropout=0.7, batch_size=64, learning_rate=2e-3,
              weight_decay=1e-3)


def powerset(n: int) -> list[tuple[int, ...]]:
    """Non-empty subsets of range(n) by size, then lexicographic (the SDK's order)."""
    return list(chain.from_iterable(combinations(range(n), r) for r in range(1, n + 1)))


def proper_subsets(key: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Non-empty proper subsets of ``key`` in ``combinations`` order (a vertex's incoming edges)."""
    return list(chain.from_iterable(combinations(key, r) for r in range(1, len(key))))


def _name(key: tuple[int, ...]) -> str:
    return "_".join(map(str, key))


class DynamicFusionGraph(nn.Module):
    """The SDK/MMSA Dynamic Fusion Graph over ``len(in_dims)`` singleton vertices (see module docstring)."""

    def __init__(self, in_dims: list[int], out_dim: int, hidden: int = 100, train_vertices: bool = False):
        super().__init__()
        n = len(in_dims)
        self.n = n
        self.subsets = powerset(n)
        # Created in MMSA's order: the pattern core (only ever deep-copied), the efficacy core, the vertices,
        # the T network, the efficacy network.
        pattern = nn.Linear(hidden, out_dim)
        efficacy_core = nn.Linear(hidden, out_dim)
        self.vertices = nn.ModuleDict()
        n_eff = 0
        for key in self.subsets[n:]:
            d_in = sum(in_dims[m] for m in key) + (2 ** len(key) - 2 - len(key)) * out_dim
            self.vertices[_name(key)] = nn.Sequential(nn.Linear(d_in, hidden), copy.deepcopy(pattern))
            n_eff += 2 ** len(key) - 2
        n_eff += 2 ** n - 1
        self.n_efficacies = n_eff
        t_in = sum(in_dims) + (2 ** n - n - 1) * out_dim
        self.t_network = nn.Sequential(nn.Linear(t_in, hidden), copy.deepcopy(pattern))
        self.efficacy = nn.Sequential(nn.Linear(sum(in_dims), hidden), efficacy_core, nn.Linear(out_dim, n_eff))
        if not train_vertices:
            self.vertices.requires_grad_(False)

    def efficacy_slots(self) -> dict[str, list[tuple[tuple[int, ...], int]]]:
        """For every vertex (and "T"): its (source vertex, efficacy index) edges, in consumption order."""
        slots, idx = {}, 0
        for key in self.subsets[self.n:]:
            srcs = proper_subsets(key)
            slots[_name(key)] = [(s, idx + j) for j, s in enumerate(srcs)]
            idx += len(srcs)
        slots["T"] = [(s, idx + j) for j, s in enumerate(self.subsets)]
        return slots

    def forward(self, singletons: list[torch.Tensor]):
        """singletons: n tensors (..., d_m). Returns (T (..., k), {subset: vertex}, efficacies (..., E))."""
        nodes: dict[tuple[int, ...], torch.Tensor] = {(m,): s for m, s in enumerate(singletons)}
        eff = self.efficacy(torch.cat(singletons, dim=-1))
        slots = self.efficacy_slots()

        def weighted(edges):
            return torch.cat([nodes[s] * eff[..., e:e + 1] for s, e in edges], dim=-1)

        for key in self.subsets[self.n:]:
            nodes[key] = self.vertices[_name(key)](weighted(slots[_name(key)]))
        return self.t_network(weighted(slots["T"])), nodes, eff


@register_method("graph_mfn")
class GraphMFN(MemoryFusionBase):
    HParams = GraphMFNHParams
    description = ("Graph-MFN (MMSA): MFN whose delta-memory attention is a Dynamic Fusion Graph over "
                   "singleton vertices relu(W[h_t-1; h_t]); vertex networks frozen as in MMSA")
    export_keys = ("fused", "efficacies")

    @classmethod
    def default_hparams(cls, family: str, setting: str) -> GraphMFNHParams:
        """MMSA's "graph_mfn" block for ``family`` (the same for aligned and unaligned data)."""
        return GraphMFNHParams(**(_MOSEI if family == "mosei" else {}))

    @classmethod
    def describe_groups(cls):
        return {"lstms": ("lstm_l", "lstm_a", "lstm_v"), "singletons": ("l_transform", "a_transform", "v_transform"),
                "dfg_vertices": ("dfg.vertices",), "dfg_t_efficacy": ("dfg.t_network", "dfg.efficacy"),
                "memory": ("att2",), "gates": ("gamma1", "gamma2"), "head": ("out",)}

    def __init__(self, hp: GraphMFNHParams, info: DataInfo):
        super().__init__(hp, info)
        self._build_lstms(hp, info)
        sizes = [hp.hidden_text, hp.hidden_audio, hp.hidden_vision]  # MMSA: singleton size = hidden size
        self.l_transform = nn.Linear(2 * hp.hidden_text, sizes[0])
        self.a_transform = nn.Linear(2 * hp.hidden_audio, sizes[1])
        self.v_transform = nn.Linear(2 * hp.hidden_vision, sizes[2])
        self.dfg = DynamicFusionGraph(sizes, hp.inner_node_dim, hp.dfg_hidden,
                                      train_vertices=hp.dfg_vertex_training == "trained")
        self._build_memory(hp, hp.inner_node_dim, self.info)

    def singletons(self, states) -> list[torch.Tensor]:
        """relu(W_m [s_{t-1}; s_t]) for every step, s = hidden (MMSA) or cell states: (T, B, d_m) each."""
        which = 0 if self.hp.singleton_source == "hidden" else 1
        out = []
        for st, lin in zip(states, (self.l_transform, self.a_transform, self.v_transform), strict=True):
            s = st[which]
            out.append(F.relu(lin(torch.cat([s[:-1], s[1:]], dim=-1))))
        return out

    def forward(self, batch: Split) -> dict[str, torch.Tensor]:
        states = self.lstm_states(*self.aligned_inputs(batch))
        attended, _, eff = self.dfg(self.singletons(states))  # (T, B, k), (T, B, 19)
        c_hat = torch.tanh(self.att2(attended))
        mem = self.memory(attended, c_hat)
        pred, fused = self.head(states, mem)
        return {"pred": pred, "fused": fused, "efficacies": eff.transpose(0, 1)}  # efficacies (B, T, 19)

    def record(self) -> dict:
        rec = super().record()
        rec.update(dfg_vertex_training=self.hp.dfg_vertex_training, singleton_source=self.hp.singleton_source,
                   efficacies=self.dfg.n_efficacies)
        return rec
