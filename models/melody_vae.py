"""A monophonic melody VAE: phrases of 16th-note steps ↔ a latent vector (MusicVAE's melody model, small).

A phrase is ``n_steps`` tokens, one per 16th note (32 steps = two bars of 4/4 by default)::

    REST (0)       a rest starts here (any sounding note ends)
    HOLD (1)       nothing new: the note (or rest) before goes on; a phrase that starts with HOLD starts silent
    2 + k          a note of MIDI pitch ``pitch_low + k`` starts here (``k < n_pitches``)

The encoder is a stack of 1-D convolutions over the token embeddings; the decoder a GRU that predicts each
token from the previous one and the latent (teacher forcing in training, greedy at inference). Both sides
accept *one-hot* tokens ``(B, T, vocab)`` as well as indices, and the decoder can sample with a
straight-through Gumbel-softmax, so a model upstream can be trained *through* the frozen melody model
(SynVAE's objective lives in ``training/``). Losses live in ``training/``.

Example
-------
>>> vae = MelodyVAE(MelodyVAEConfig(latent_dim=4, hidden_width=32, embed_dim=8, conv_width=16)).eval()
>>> tokens = vae.decode(torch.zeros(2, 4))              # greedy: (B, n_steps) token indices
>>> tuple(tokens.shape), tuple(vae.encode(tokens)[0].shape)
((2, 32), (2, 4))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.checkpoint import CheckpointMixin, check_positive_ints
from models.errors import ParameterError

__all__ = ["REST", "HOLD", "MelodyVAEConfig", "MelodyVAE", "tokens_to_notes", "notes_to_tokens"]

REST = 0
HOLD = 1
_FIRST_PITCH = 2


@dataclass
class MelodyVAEConfig:
    """Hyper-parameters that fully determine a :class:`MelodyVAE`.

    Parameters
    ----------
    n_steps : 16th-note steps per phrase.
    steps_per_bar : 16th-note steps per bar (16 = 4/4); ``n_steps`` is a whole number of bars.
    pitch_low : lowest MIDI pitch the vocabulary holds.
    n_pitches : pitches ``pitch_low … pitch_low + n_pitches − 1``.
    latent_dim : size of the latent vector.
    embed_dim : token embedding size (both sides).
    conv_width : channels of the encoder's convolutions.
    n_conv_layers : stride-2 convolutions in the encoder (each halves the steps).
    hidden_width : GRU state size of the decoder.
    """

    n_steps: int = 32
    steps_per_bar: int = 16
    pitch_low: int = 48
    n_pitches: int = 37
    latent_dim: int = 16
    embed_dim: int = 32
    conv_width: int = 96
    n_conv_layers: int = 3
    hidden_width: int = 192

    def __post_init__(self) -> None:
        check_positive_ints(self, "n_steps", "steps_per_bar", "n_pitches", "latent_dim", "embed_dim", "conv_width",
                            "n_conv_layers", "hidden_width")
        if self.n_steps % self.steps_per_bar:
            raise ParameterError(f"MelodyVAEConfig.n_steps={self.n_steps} is not a whole number of bars of "
                                 f"steps_per_bar={self.steps_per_bar}")
        if self.n_steps % 2**self.n_conv_layers:
            raise ParameterError(f"MelodyVAEConfig.n_steps={self.n_steps} is not divisible by 2**n_conv_layers="
                                 f"{2**self.n_conv_layers}")
        if isinstance(self.pitch_low, bool) or not isinstance(self.pitch_low, int) or not (
                0 <= self.pitch_low and self.pitch_low + self.n_pitches <= 128):
            raise ParameterError(f"MelodyVAEConfig pitches {self.pitch_low}…{self.pitch_low + self.n_pitches - 1} "
                                 "are not all MIDI pitches 0…127")

    @property
    def vocab_size(self) -> int:
        """REST, HOLD and one token per pitch."""
        return _FIRST_PITCH + self.n_pitches


class MelodyVAE(CheckpointMixin, nn.Module):
    """Melody phrases ``(B, n_steps)`` (token indices) or ``(B, n_steps, vocab)`` (one-hot) ↔ latents ``(B, D)``.

    There is no batch normalisation or dropout: train and eval mode compute the same function.
    """

    checkpoint_kind = "melody_vae"
    config_class = MelodyVAEConfig

    def __init__(self, config: MelodyVAEConfig) -> None:
        super().__init__()
        self.config = config
        vocab = config.vocab_size
        self.encoder_embedding = nn.Linear(vocab, config.embed_dim, bias=False)
        layers: list[nn.Module] = []
        width = config.embed_dim
        for _ in range(config.n_conv_layers):
            layers += [nn.Conv1d(width, config.conv_width, kernel_size=4, stride=2, padding=1), nn.SiLU()]
            width = config.conv_width
        self.encoder_convs = nn.Sequential(*layers)
        n_features = config.conv_width * (config.n_steps // 2**config.n_conv_layers)
        self.encoder_head = nn.Sequential(nn.Flatten(), nn.Linear(n_features, config.hidden_width), nn.SiLU(),
                                          nn.Linear(config.hidden_width, 2 * config.latent_dim))

        self.decoder_embedding = nn.Linear(vocab, config.embed_dim, bias=False)
        self.decoder_start = nn.Parameter(torch.zeros(config.embed_dim))
        self.decoder_init = nn.Linear(config.latent_dim, config.hidden_width)
        self.decoder_gru = nn.GRU(config.embed_dim + config.latent_dim + config.steps_per_bar, config.hidden_width,
                                  batch_first=True)
        self.decoder_out = nn.Linear(config.hidden_width + config.latent_dim, vocab)
        # where in the bar each step falls, as a one-hot: the decoder need not count steps to place downbeats
        self.register_buffer("bar_position", torch.eye(config.steps_per_bar).repeat(config.n_steps // config.steps_per_bar, 1),
                             persistent=False)

    # ---- checks ----------------------------------------------------------------------------------------

    def one_hot(self, tokens: Tensor) -> Tensor:
        """Token indices ``(B, n_steps)`` → float one-hot ``(B, n_steps, vocab)``; one-hot input passes through."""
        config = self.config
        if isinstance(tokens, Tensor) and tokens.ndim == 3 and tuple(tokens.shape[1:]) == (config.n_steps, config.vocab_size):
            return tokens
        if not isinstance(tokens, Tensor) or tokens.ndim != 2 or tokens.shape[1] != config.n_steps:
            shape = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
            raise ParameterError(f"melody batch has shape {shape}; expected (B, {config.n_steps}) token indices "
                                 f"or (B, {config.n_steps}, {config.vocab_size}) one-hot")
        if tokens.is_floating_point() or tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= config.vocab_size):
            raise ParameterError(f"melody tokens must be integers in 0…{config.vocab_size - 1}")
        return F.one_hot(tokens.long(), config.vocab_size).float()

    def _check_latents(self, z: Tensor) -> None:
        if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ParameterError(f"latent batch has shape {shape}; expected (B, {self.config.latent_dim})")

    # ---- encoder ---------------------------------------------------------------------------------------

    def encode(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Phrases (indices ``(B, n_steps)`` or one-hot ``(B, n_steps, vocab)``) → ``(mu, logvar)``, each ``(B, D)``."""
        x = self.encoder_embedding(self.one_hot(tokens)).transpose(1, 2)  # (B, E, T)
        mu, logvar = self.encoder_head(self.encoder_convs(x)).chunk(2, dim=1)
        return mu, logvar

    # ---- decoder ---------------------------------------------------------------------------------------

    def _inputs(self, previous: Tensor, z: Tensor, steps: slice) -> Tensor:
        """GRU inputs ``(B, t, E + D + steps_per_bar)``: previous token embeddings, the latent, bar positions."""
        n = previous.shape[1]
        position = self.bar_position[steps].expand(len(z), -1, -1)
        return torch.cat([previous, z[:, None, :].expand(-1, n, -1), position], dim=2)

    def _step(self, state: Tensor, previous: Tensor, z: Tensor, step: int) -> tuple[Tensor, Tensor]:
        """One decoding step: GRU state ``(1, B, H)``, previous embedding ``(B, E)`` → new state, logits ``(B, V)``."""
        output, state = self.decoder_gru(self._inputs(previous[:, None, :], z, slice(step, step + 1)), state)
        return state, self.decoder_out(torch.cat([output[:, 0], z], dim=1))

    def _initial_state(self, z: Tensor) -> Tensor:
        return torch.tanh(self.decoder_init(z))[None]

    def decode_logits(self, z: Tensor, targets: Tensor) -> Tensor:
        """Teacher forcing: logits ``(B, n_steps, vocab)`` of each step given the true previous tokens ``targets``."""
        self._check_latents(z)
        embedded = self.decoder_embedding(self.one_hot(targets))
        previous = torch.cat([self.decoder_start.expand(len(z), 1, -1), embedded[:, :-1]], dim=1)
        output, _ = self.decoder_gru(self._inputs(previous, z, slice(None)), self._initial_state(z))
        n_steps = self.config.n_steps
        return self.decoder_out(torch.cat([output, z[:, None, :].expand(-1, n_steps, -1)], dim=2))

    def decode(self, z: Tensor) -> Tensor:
        """Greedy decoding: latents ``(B, D)`` → token indices ``(B, n_steps)`` (int64). Deterministic."""
        self._check_latents(z)
        state = self._initial_state(z)
        previous = self.decoder_start.expand(len(z), -1)
        tokens = []
        for step in range(self.config.n_steps):
            state, logits = self._step(state, previous, z, step)
            token = logits.argmax(dim=1)
            tokens.append(token)
            previous = self.decoder_embedding.weight.T[token]
        return torch.stack(tokens, dim=1)

    def decode_relaxed(self, z: Tensor, *, temperature: float = 1.0, hard: bool = True, noise: bool = True,
                       generator: torch.Generator | None = None) -> Tensor:
        """Differentiable decoding: latents ``(B, D)`` → one-hot (or soft) tokens ``(B, n_steps, vocab)``.

        Each step samples a Gumbel-softmax at ``temperature`` (``noise=False``: plain softmax, whose ``hard``
        form is the greedy token) and feeds it back as the next input. ``hard=True`` is the straight-through
        estimator: exact one-hot values forward, the soft sample's gradient backward.
        """
        self._check_latents(z)
        if not temperature > 0:
            raise ParameterError(f"temperature={temperature!r}; expected > 0")
        state = self._initial_state(z)
        previous = self.decoder_start.expand(len(z), -1)
        outputs = []
        for step in range(self.config.n_steps):
            state, logits = self._step(state, previous, z, step)
            if noise:
                uniform = torch.rand(logits.shape, generator=generator, device="cpu").to(logits)
                logits = logits - torch.log(-torch.log(uniform.clamp(1e-9, 1.0 - 1e-9)))
            soft = torch.softmax(logits / temperature, dim=1)
            if hard:
                one_hot = F.one_hot(soft.argmax(dim=1), soft.shape[1]).to(soft)
                soft = one_hot + soft - soft.detach()
            outputs.append(soft)
            previous = self.decoder_embedding(soft)
        return torch.stack(outputs, dim=1)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Phrases ``(B, n_steps)`` → ``(logits (B, n_steps, vocab), mu, logvar)``, teacher forced.

        In training mode the logits decode a sample ``z ~ N(mu, exp(logvar))``; in eval mode ``mu``.
        """
        mu, logvar = self.encode(tokens)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        return self.decode_logits(z, tokens), mu, logvar


def tokens_to_notes(tokens, *, pitch_low: int) -> list[tuple[int, int, int]]:
    """One phrase's tokens ``(n_steps,)`` → notes ``[(start_step, end_step, midi_pitch)]``, in order.

    A note lasts from its token to the next REST or pitch token (or the phrase's end); HOLD tokens extend it.

    Example
    -------
    >>> tokens_to_notes([2, 1, 1, 0, 4, 1], pitch_low=60)
    [(0, 3, 60), (4, 6, 62)]
    """
    values = [int(t) for t in tokens]
    notes = []
    current: tuple[int, int] | None = None  # (start, pitch)
    for step, token in enumerate(values):
        if token < 0:
            raise ParameterError(f"token {token} at step {step}; tokens are ≥ 0")
        if token == HOLD:
            continue
        if current is not None:
            notes.append((current[0], step, current[1]))
            current = None
        if token >= _FIRST_PITCH:
            current = (step, pitch_low + token - _FIRST_PITCH)
    if current is not None:
        notes.append((current[0], len(values), current[1]))
    return notes


def notes_to_tokens(notes, *, n_steps: int, pitch_low: int, n_pitches: int) -> list[int]:
    """Notes ``[(start_step, end_step, midi_pitch)]`` (monophonic, in order) → ``n_steps`` tokens.

    The inverse of :func:`tokens_to_notes` for notes on the step grid; ParameterError for overlapping notes,
    steps outside the phrase or pitches outside ``pitch_low … pitch_low + n_pitches − 1``.

    Example
    -------
    >>> notes_to_tokens([(0, 3, 60), (4, 6, 62)], n_steps=6, pitch_low=60, n_pitches=12)
    [2, 1, 1, 0, 4, 1]
    """
    tokens = [HOLD] * n_steps
    end_of_last = 0
    for start, end, pitch in notes:
        if not 0 <= start < end <= n_steps or start < end_of_last:
            raise ParameterError(f"note ({start}, {end}, {pitch}) is outside 0…{n_steps} steps or overlaps the one before")
        if not pitch_low <= pitch < pitch_low + n_pitches:
            raise ParameterError(f"pitch {pitch} is outside {pitch_low}…{pitch_low + n_pitches - 1}")
        tokens[start] = _FIRST_PITCH + pitch - pitch_low
        if end < n_steps:
            tokens[end] = REST  # replaced by the next note's token when it starts right here
        end_of_last = end
    if not notes or notes[0][0] > 0:
        tokens[0] = REST  # a phrase that starts silent says so
    return tokens
