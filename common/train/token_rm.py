"""The token-level reward-model objective of DeepSpeed-Chat, which PCRM's and RLLR's upstream code both train.

With a = the first position where the chosen and rejected token ids differ and e = the longer of the two lengths,
a pair's loss is the mean over t ∈ [a, e) of −log σ(v_c[t] − v_r[t]) + term(v_c[t] − v_r[t]), where v is the value
head's output at every position and ``term`` a registered pair term (PCRM: the prior upper bound; RLLR: none).
Positions past the shorter sequence's end are padding whose values are still scored, as upstream does (a sequence's
end comes from its attention mask). Identical pairs use the last position only. Evaluation, PPO and every scorer
still read the last-token score, as upstream's ``chosen_end_scores`` do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from common.config import ConfigError
from common.losses import PairTerm
from common.train import rm as common_rm


def divergent_span(chosen_ids: Tensor, rejected_ids: Tensor, chosen_len: int, rejected_len: int) -> tuple[int, int]:
    """[a, e): a = first index where the token ids differ, e = max(chosen_len, rejected_len); (T,), (T,) -> ints.

    Identical sequences give the last position alone, [e − 1, e), as upstream."""
    end = max(chosen_len, rejected_len)
    differ = (chosen_ids[:end] != rejected_ids[:end]).nonzero()
    if differ.numel() == 0:
        return end - 1, end
    return int(differ[0, 0]), end


def divergent_span_loss(chosen_values: Tensor, rejected_values: Tensor, chosen_ids: Tensor, rejected_ids: Tensor,
                        chosen_mask: Tensor, rejected_mask: Tensor, pair_term: PairTerm,
                        extras: dict[str, Tensor]) -> Tensor:
    """Per pair, the mean over the divergent span of −log σ(Δ_t) + term(Δ_t), Δ_t = v_c[t] − v_r[t].

    values (B, T) per-token head outputs; ids and masks (B, T), right-padded to one width; extras {name: (B,)}
    -> (B,). The pair term sees the pair's extras repeated along its span (δ* is one number per pair).
    """
    losses = []
    for i in range(chosen_values.shape[0]):
        start, end = divergent_span(chosen_ids[i], rejected_ids[i], int(chosen_mask[i].sum()),
                                    int(rejected_mask[i].sum()))
        delta = chosen_values[i, start:end] - rejected_values[i, start:end]  # (L,)
        span_extras = {k: v[i].expand_as(delta) for k, v in extras.items()}
        losses.append((-F.logsigmoid(delta) + pair_term(delta, span_extras)).mean())
    return torch.stack(losses)


def _score_module(model) -> torch.nn.Module:
    """The outermost module named ``score`` (under PEFT, the wrapper that routes to the trained copy)."""
    named = [(name, mod) for name, mod in model.named_modules() if name.split(".")[-1] == "score"]
    if not named:
        raise ConfigError("the token-level RM loss (pcrm score_mode: divergent_mean, rllr loss: token) needs a "
                          f"decoder reward model with a `score` head (got {type(model).__name__}); use the "
                          "last-token loss for encoders")
    return min(named, key=lambda item: item[0].count("."))[1]


def token_values(model, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
    """The model's sequence scores (N,) and its head's output at every position (N, T), from one forward pass."""
    captured: dict[str, Tensor] = {}
    hook = _score_module(model).register_forward_hook(lambda m, a, out: captured.__setitem__("v", out))
    try:
        outputs = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    finally:
        hook.remove()
    return outputs.logits.squeeze(-1), captured["v"].squeeze(-1)


def make_token_trainer_class():
    """common's pairwise RM trainer with the divergent-span objective in place of the last-token one."""
    base = common_rm.pairwise_reward_trainer_class()

    class DivergentSpanRewardTrainer(base):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            scores, values = token_values(model, inputs["input_ids"], inputs["attention_mask"])  # (2B,), (2B, T)
            chosen_v, rejected_v = values.chunk(2)  # (B, T) each
            chosen_ids, rejected_ids = inputs["input_ids"].chunk(2)
            chosen_mask, rejected_mask = inputs["attention_mask"].chunk(2)
            loss = divergent_span_loss(chosen_v, rejected_v, chosen_ids, rejected_ids, chosen_mask, rejected_mask,
                                       self.pair_term, inputs["extras"]).mean()
            chosen, rejected = scores.chunk(2)  # last-token scores, for the logged metrics
            mode = "train" if model.training else "eval"
            with torch.no_grad():
                self._metrics[mode]["accuracy"].append((chosen > rejected).float().mean().item())
                self._metrics[mode]["margin"].append((chosen - rejected).mean().item())
            if return_outputs:
                return loss, {"logits": scores}
            return loss

    return DivergentSpanRewardTrainer
