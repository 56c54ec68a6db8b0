"""The official EMOE training pattern (per-sample DataLoader, per-sample Python loops, ``.item()`` every step),
spelled out as the baseline of the speed benchmark; ``tests/emoe/test_emoe_naive_reference.py`` checks that it
computes what ``emoe`` computes."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from bench.data.tensors import DatasetBundle, Split
from bench.metrics import compute_metrics


class PerSampleDataset(Dataset):
    """MMSA's ``MMDataset`` pattern: numpy arrays, one dict of fresh tensors per sample."""

    def __init__(self, split: Split):
        self.text, self.audio = split.text.numpy(), split.audio.numpy()
        self.vision, self.labels = split.vision.numpy(), split.labels.numpy()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"text": torch.Tensor(self.text[i]), "audio": torch.Tensor(self.audio[i]),
                "vision": torch.Tensor(self.vision[i]), "labels": {"M": torch.Tensor(self.labels[i].reshape(-1))},
                "index": i}


def naive_forward(net, text, audio, vision) -> dict:
    """EMOENet.forward (official face) with the official per-sample fusion loop (emoe.py:159-168)."""
    hp = net.hp
    x = {"l": F.dropout(text, p=hp.text_dropout, training=net.training).transpose(1, 2),
         "v": vision.transpose(1, 2), "a": audio.transpose(1, 2)}
    enc = {m: net.encoder_c(net.conv_proj[m](x[m]) if net.conv_applied[m] else x[m]) for m in ("l", "v", "a")}
    w = net.route(text, vision, audio, enc)
    out, hs, feats = {"weights": w}, {}, {}
    for m in ("l", "v", "a"):
        h = net.transformers[m](enc[m].transpose(1, 2))[:, -1]
        feat, logit = net.unimodal_heads[m](h)
        hs[m], feats[m], out[f"pred_{m}"] = h, feat, logit.squeeze(-1)
    fused = []
    for i in range(w.shape[0]):  # per-sample Python loop, as the official code
        fused.append(w[i, 0] * hs["l"][i] + w[i, 1] * hs["v"][i] + w[i, 2] * hs["a"][i])
    c = torch.stack(fused)
    c_feat, c_logit = net.fused_head(c)
    out.update(pred=c_logit.squeeze(-1), proj_c=c_feat, feats=feats)
    return out


def naive_loss(out, y, hp):
    """Official EMOE.py:52-82 with the per-sample importance loop."""
    l1 = torch.nn.L1Loss()
    l_m = l1(out["pred"], y)
    l_l, l_v, l_a = (l1(out[f"pred_{m}"], y) for m in ("l", "v", "a"))
    imp = []
    for i in range(y.shape[0]):
        inv = [1.0 / ((y[i] - out[f"pred_{m}"][i]) ** 2 + hp.importance_eps) for m in ("l", "v", "a")]
        total = inv[0] + inv[1] + inv[2]
        imp.append(torch.stack([v / total for v in inv]))
    target = torch.stack(imp).detach()
    w = out["weights"]
    sim = torch.nn.MSELoss()(w, target)
    p = w.clamp_min(hp.entropy_eps)
    entropy = (w.shape[1] * (p * p.log()).sum(dim=1)).mean()
    teacher = sum(w[:, j:j + 1] * out["feats"][m] for j, m in enumerate(("l", "v", "a"))).detach()
    ud = ((torch.softmax(out["proj_c"], -1) - torch.softmax(teacher, -1)) ** 2).mean()
    return l_m + (l_l + l_v + l_a) / 3 + hp.lambda1 * (entropy + hp.alpha * sim) + hp.lambda2 * ud


def naive_epoch(model, bundle: DatasetBundle, hp, optimizer, gen: torch.Generator, device="cpu") -> dict:
    """One official-style epoch: DataLoader + per-step ``.item()`` + CPU copies of every output, then
    validation and test passes (the official code evaluates both every epoch)."""
    net = model.net
    loader = DataLoader(PerSampleDataset(bundle.splits["train"]), batch_size=hp.batch_size, shuffle=True,
                        generator=gen)
    model.train()
    left, train_loss, y_pred, y_true = hp.grad_accum, 0.0, [], []
    for batch in loader:
        if left == hp.grad_accum:
            optimizer.zero_grad()
        left -= 1
        text, audio, vision = (batch[k].to(device) for k in ("text", "audio", "vision"))
        y = batch["labels"]["M"].to(device).view(-1)
        out = naive_forward(net, text, audio, vision)
        loss = naive_loss(out, y, hp)
        loss.backward()
        train_loss += loss.item()
        y_pred.append(out["pred"].detach().cpu())
        y_true.append(y.cpu())
        if not left:
            optimizer.step()
            left = hp.grad_accum
    compute_metrics("regression", torch.cat(y_pred).numpy(), torch.cat(y_true).numpy())
    res = {}
    model.eval()
    with torch.no_grad():
        for name in ("valid", "test"):
            preds, trues, losses = [], [], []
            for batch in DataLoader(PerSampleDataset(bundle.splits[name]), batch_size=hp.batch_size):
                y = batch["labels"]["M"].to(device).view(-1)
                out = naive_forward(net, *(batch[k].to(device) for k in ("text", "audio", "vision")))
                losses.append(F.l1_loss(out["pred"], y).item())
                preds.append(out["pred"].cpu())
                trues.append(y.cpu())
            res[name] = compute_metrics("regression", torch.cat(preds).numpy(), torch.cat(trues).numpy())
            res[name]["loss"] = round(float(np.mean(losses)), 4)
    return res


