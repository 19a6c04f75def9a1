"""NumPy transcriptions of openai/glow's formulas (model.py and tfops.py), written independently of glow_tf.

Everything is computed in float64 with explicit loops or einsum, from the original's code (openai/glow
model.py and tfops.py), so that the tests compare glow_tf against the original rather than against itself.
Weights are read out of the model under test; the arithmetic never touches TensorFlow.
"""

import math

import numpy as np

LOGSCALE = 3.0


def squeeze2d(x, f=2):
    """out[b, i, j, c*f*f + dy*f + dx] = x[b, i*f + dy, j*f + dx, c] (the original's channel order)."""
    b, h, w, c = x.shape
    out = np.zeros([b, h // f, w // f, c * f * f], x.dtype)
    for i in range(h // f):
        for j in range(w // f):
            for ch in range(c):
                for dy in range(f):
                    for dx in range(f):
                        out[:, i, j, ch * f * f + dy * f + dx] = x[:, i * f + dy, j * f + dx, ch]
    return out


def unsqueeze2d(x, f=2):
    b, h, w, c = x.shape
    out = np.zeros([b, h * f, w * f, c // (f * f)], x.dtype)
    for i in range(h):
        for j in range(w):
            for ch in range(c // (f * f)):
                for dy in range(f):
                    for dx in range(f):
                        out[:, i * f + dy, j * f + dx, ch] = x[:, i, j, ch * f * f + dy * f + dx]
    return out


def edge_pad(x, filter_size=(3, 3)):
    """tfops add_edge_padding: zero-pad H and W by (k - 1) / 2 and append a channel that is 1 on the
    padding only; a 1x1 filter has no padding."""
    if tuple(filter_size) == (1, 1):
        return x
    a, c = (filter_size[0] - 1) // 2, (filter_size[1] - 1) // 2
    b, h, w, _ = x.shape
    padded = np.pad(x, [(0, 0), (a, a), (c, c), (0, 0)])
    border = np.ones([b, h + 2 * a, w + 2 * c, 1])
    border[:, a:a + h, c:c + w] = 0.0
    return np.concatenate([padded, border], axis=-1)


def conv_valid(x, kernel):
    """Cross-correlation with VALID padding, stride 1: kernel [kh, kw, C_in, C_out]."""
    kh, kw = kernel.shape[:2]
    b, h, w, _ = x.shape
    out = np.zeros([b, h - kh + 1, w - kw + 1, kernel.shape[3]])
    for dy in range(kh):
        for dx in range(kw):
            out += np.einsum("bhwc,co->bhwo", x[:, dy:dy + h - kh + 1, dx:dx + w - kw + 1], kernel[dy, dx])
    return out


def conv(x, kernel):
    """The original's convolution: edge-padded for 3x3 kernels, plain for 1x1."""
    return conv_valid(edge_pad(x, kernel.shape[:2]), kernel)


def conv2d(x, kernel, b, logs_stored):
    """tfops.conv2d with edge_bias=True, pad='SAME', do_actnorm=True, after init: the actnorm in place of
    a bias."""
    return actnorm(conv(x, kernel), b, logs_stored)[0]


def actnorm(x, b, logs_stored):
    """(x + b) * exp(3 * logs); logdet H * W * sum(3 * logs)."""
    logs = LOGSCALE * logs_stored
    return (x + b) * np.exp(logs), x.shape[1] * x.shape[2] * np.sum(logs)


def actnorm_ddi(x):
    """The original's data-dependent values: b = -mean, logs = log(1/(sqrt(mean(centred^2)) + 1e-6)) / 3."""
    b = -x.mean(axis=(0, 1, 2), keepdims=True)
    logs = np.log(1.0 / (np.sqrt(((x + b) ** 2).mean(axis=(0, 1, 2), keepdims=True)) + 1e-6)) / LOGSCALE
    return b, logs


def conv2d_zeros(x, w, b, logs_stored):
    return (conv(x, w) + b.reshape(1, 1, 1, -1)) * np.exp(LOGSCALE * logs_stored.reshape(1, 1, 1, -1))


def linear_zeros(x, w, b, logs_stored):
    return (x @ w + b) * np.exp(LOGSCALE * logs_stored)


def gaussian_logp(x, mean, logs):
    return -0.5 * (math.log(2 * math.pi) + 2.0 * logs + (x - mean) ** 2 / np.exp(2.0 * logs))


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def flat_sum(v):
    return v.reshape(v.shape[0], -1).sum(axis=1)


def invconv_logdet(w, h, width):
    """H * W * log|det W| in float64."""
    return h * width * np.log(abs(np.linalg.det(np.asarray(w, np.float64))))


def preprocess(x_uint8, n_bits):
    x = x_uint8.astype(np.float64)
    if n_bits < 8:
        x = np.floor(x / 2 ** (8 - n_bits))
    return x / 2 ** n_bits - 0.5


def postprocess(x, n_bits):
    n_bins = 2 ** n_bits
    return np.clip(np.floor((x + 0.5) * n_bins) * (256.0 / n_bins), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------- whole pieces, from model weights
def _np(v):
    return np.asarray(v.numpy(), np.float64)


def coupling_nn(nn, z1):
    """The original's f(): conv3x3 -> actnorm -> relu -> conv1x1 -> actnorm -> relu -> conv2d_zeros."""
    h = np.maximum(actnorm(conv(z1, _np(nn.l_1.W)), _np(nn.l_1.actnorm.b), _np(nn.l_1.actnorm.logs))[0], 0)
    h = np.maximum(actnorm(conv(h, _np(nn.l_2.W)), _np(nn.l_2.actnorm.b), _np(nn.l_2.actnorm.logs))[0], 0)
    return conv2d_zeros(h, _np(nn.l_last.W), _np(nn.l_last.b), _np(nn.l_last.logs))


def coupling(layer, x, affine):
    c = x.shape[-1]
    z1, z2 = x[..., : c // 2], x[..., c // 2:]
    h = coupling_nn(layer.nn, z1)
    if not affine:
        return np.concatenate([z1, z2 + h], -1), np.zeros(x.shape[0])
    shift, scale = h[..., 0::2], sigmoid(h[..., 1::2] + 2.0)
    return np.concatenate([z1, (z2 + shift) * scale], -1), flat_sum(np.log(scale))


def permutation(layer, x):
    name = type(layer).__name__
    if name == "ReversePermute":
        return x[..., ::-1], 0.0
    if name == "ShufflePermute":
        return x[..., layer.indices.numpy()], 0.0
    w = np.asarray(layer.weight_matrix().numpy(), np.float64)
    return np.einsum("bhwc,co->bhwo", x, w), invconv_logdet(w, x.shape[1], x.shape[2])


def flow_step(step, x, affine):
    x, ld_a = actnorm(x, _np(step.actnorm.b), _np(step.actnorm.logs))
    x, ld_p = permutation(step.permutation, x)
    x, ld_c = coupling(step.coupling, x, affine)
    return x, ld_a + ld_p + ld_c


def split2d(split, z):
    c = z.shape[-1]
    z1, z2 = z[..., : c // 2], z[..., c // 2:]
    h = conv2d_zeros(z1, _np(split.conv.W), _np(split.conv.b), _np(split.conv.logs))
    mean, logs = h[..., 0::2], h[..., 1::2]
    return squeeze2d(z1), flat_sum(gaussian_logp(z2, mean, logs)), (z2 - mean) / np.exp(logs)


def top_prior(prior, z, y_onehot):
    b, h, w, c = z.shape
    hh = np.zeros([b, h, w, 2 * c])
    if prior.p is not None:
        hh = conv2d_zeros(hh, _np(prior.p.W), _np(prior.p.b), _np(prior.p.logs))
    if prior.y_emb is not None:
        emb = linear_zeros(y_onehot, _np(prior.y_emb.W), _np(prior.y_emb.b), _np(prior.y_emb.logs))
        hh = hh + emb.reshape(b, 1, 1, 2 * c)
    mean, logs = hh[..., :c], hh[..., c:]  # halves here, not interleaved
    return flat_sum(gaussian_logp(z, mean, logs)), (z - mean) / np.exp(logs)


def glow_objective(model, x, y):
    """(objective [B], z_top, eps list) of a Glow model for continuous input x, following model.py's encoder and the objective's terms."""
    hps = model.hps
    affine = hps.flow_coupling == 1
    y_onehot = np.eye(hps.n_classes)[y]
    objective = np.full(x.shape[0], -math.log(2 ** hps.n_bits_x) * np.prod(x.shape[1:]))
    z = squeeze2d(np.asarray(x, np.float64))
    eps = []
    for i, level in enumerate(model.levels):
        for step in level.flows:
            z, ld = flow_step(step, z, affine)
            objective = objective + ld
        if i < hps.n_levels - 1:
            z, logp, e = split2d(model.splits[i], z)
            objective = objective + logp
            eps.append(e)
    logp, e = top_prior(model.prior, z, y_onehot)
    return objective + logp, z, eps + [e]
