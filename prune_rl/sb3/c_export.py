"""The deterministic policy as dependency-free C99: ``policy.h`` and ``policy.c``, weights as ``static const float``.

:func:`c_sources` writes what :class:`prune_rl.sb3.deployed.DeployedPolicy` computes (and ``policy.onnx`` holds) as
one C function, ``void policy_act(const float obs[POLICY_OBS_DIM], float act[POLICY_ACT_DIM])``: VecNormalize's
``clip((obs - mean) / sqrt(var + eps), -clip_obs, clip_obs)``, the Linear layers at their stored widths with their
activations, and SB3's action post-processing (argmax written as ``act[0]``; clipping to the bounds; rescaling of
``[-1, 1]`` to the bounds). Only libm is needed (``tanhf``, ``expf``). Floats are printed with 9 significant digits,
which round-trip float32 exactly, so the C policy holds the very weights of the ONNX one.

:data:`BENCH_SOURCE` is a small program compiled beside it (``policy_bench.c``): it writes the actions of a file of
observations (the exactness check) or times ``policy_act`` with ``clock_gettime`` (the cost card's C latency).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from prune_rl.sb3.deployed import DeployedPolicy

HEADER, SOURCE, BENCH = "policy.h", "policy.c", "policy_bench.c"

# An activation as a C expression of the float ``v`` (torch's definitions, in float arithmetic).
ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.Tanh: "tanhf(v)",
    nn.ReLU: "(v > 0.0f ? v : 0.0f)",
    nn.Sigmoid: "1.0f / (1.0f + expf(-v))",
    nn.SiLU: "v / (1.0f + expf(-v))",
    nn.ELU: "(v > 0.0f ? v : {alpha} * (expf(v) - 1.0f))",
    nn.LeakyReLU: "(v >= 0.0f ? v : {negative_slope} * v)",
    nn.Identity: "v",
}


def c_float(value: float) -> str:
    """:return: ``value`` as a C float literal that reads back as the same float32 (``INFINITY``, ``NAN`` included)."""
    value = float(np.float32(value))
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    text = f"{value:.9g}"
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


def _array(name: str, values: torch.Tensor | np.ndarray) -> str:
    """A ``static const float`` array (1-D or 2-D, row-major as torch stores a Linear weight ``(out, in)``)."""
    data = np.asarray(values, dtype=np.float32)
    dims = "".join(f"[{n}]" for n in data.shape)
    if data.ndim == 1:
        body = _rows([data])
    else:
        body = ",\n".join("    {" + _rows([row]).strip() + "}" for row in data)
    return f"static const float {name}{dims} = {{\n{body}\n}};\n"


def _rows(rows: list[np.ndarray], per_line: int = 8) -> str:
    values = [c_float(v) for row in rows for v in row]
    return ",\n".join("    " + ", ".join(values[i : i + per_line]) for i in range(0, len(values), per_line))


def _activation(module: nn.Module) -> str:
    template = ACTIVATIONS.get(type(module))
    if template is None:
        raise ValueError(f"its activation {type(module).__name__} has no C form (known: {', '.join(_names())})")
    return template.format(**{k: c_float(getattr(module, k)) for k in ("alpha", "negative_slope") if hasattr(module, k)})


def _names() -> list[str]:
    return [cls.__name__ for cls in ACTIVATIONS]


def c_sources(policy: DeployedPolicy, description: str = "") -> tuple[str, str]:
    """
    Write a policy as C99.

    :param policy: The deterministic policy (its network at the widths it has: export the compact one).
    :param description: A line for the files' opening comment (where the policy comes from).
    :return: ``(policy.h, policy.c)`` as text.
    :raises ValueError: If the policy is not an MLP on flat observations with known activations (e.g. a CNN).
    """
    modules, post = policy.layers()
    obs_dim = math.prod(policy.policy.observation_space.shape or ())
    act_dim = 1 if policy.discrete else math.prod(policy.policy.action_space.shape or ())
    constants: list[str] = []
    lines: list[str] = []
    n_floats = 0

    def constant(name: str, values: torch.Tensor | np.ndarray) -> None:
        nonlocal n_floats
        constants.append(_array(name, values))
        n_floats += int(np.asarray(values).size)

    buffer, width = "x0", obs_dim
    buffers = [f"    float x0[{obs_dim}];"]
    if policy.normalize:
        constant("OBS_MEAN", policy.obs_mean)
        constant("OBS_SCALE", policy.obs_scale)
        clip = c_float(policy.clip_obs)
        lines += [
            f"    for (int i = 0; i < {obs_dim}; ++i) {{  /* VecNormalize: clip((obs - mean) / sqrt(var + eps)) */",
            "        float v = (obs[i] - OBS_MEAN[i]) / OBS_SCALE[i];",
            f"        x0[i] = v < -{clip} ? -{clip} : (v > {clip} ? {clip} : v);",
            "    }",
        ]
    else:
        lines.append(f"    for (int i = 0; i < {obs_dim}; ++i) x0[i] = obs[i];")
    k = 0
    while k < len(modules):
        module = modules[k]
        if isinstance(module, nn.Linear):
            n = len(buffers)
            constant(f"W{n}", module.weight.detach())  # (out_features, in_features)
            has_bias = module.bias is not None
            if has_bias:
                constant(f"B{n}", module.bias.detach())  # type: ignore[union-attr]
            act = "v"
            if k + 1 < len(modules) and not isinstance(modules[k + 1], nn.Linear):
                act = _activation(modules[k + 1])
                k += 1
            out = f"x{n}"
            buffers.append(f"    float {out}[{module.out_features}];")
            lines += [
                f"    for (int o = 0; o < {module.out_features}; ++o) {{  /* Linear({module.in_features}, "
                f"{module.out_features}){'' if act == 'v' else ' + ' + type(modules[k]).__name__} */",
                f"        float v = {f'B{n}[o]' if has_bias else '0.0f'};",
                f"        for (int i = 0; i < {module.in_features}; ++i) v += W{n}[o][i] * {buffer}[i];",
                f"        {out}[o] = {act};",
                "    }",
            ]
            buffer, width = out, module.out_features
        elif type(module) in ACTIVATIONS:
            act = _activation(module)
            lines.append(f"    for (int i = 0; i < {width}; ++i) {{ float v = {buffer}[i]; {buffer}[i] = {act}; }}")
        else:
            raise ValueError(f"its layer {type(module).__name__} has no C form")
        k += 1
    lines += _post(policy, post, buffer, width, act_dim, constant)
    header = _header(obs_dim, act_dim, 4 * n_floats, description)
    source = "\n".join(
        [
            _opening("policy.c", description),
            "#include <math.h>",
            "",
            f'#include "{HEADER}"',
            "",
            *constants,
            "void policy_act(const float obs[POLICY_OBS_DIM], float act[POLICY_ACT_DIM])",
            "{",
            *buffers,
            *lines,
            "}",
            "",
        ]
    )
    return header, source


def _post(policy: DeployedPolicy, post: str, buffer: str, width: int, act_dim: int, constant) -> list[str]:
    """SB3's action post-processing of the network's output ``buffer``, into ``act``."""
    if post == "argmax":  # the first of equal maxima, as torch.argmax
        return [
            "    int best = 0;",
            f"    for (int i = 1; i < {width}; ++i) if ({buffer}[i] > {buffer}[best]) best = i;",
            "    act[0] = (float)best;",
        ]
    if width != act_dim:
        raise ValueError(f"the network gives {width} outputs for {act_dim} action dimensions")
    if post == "clip":
        if policy.bounds is not None:
            low, high = (c_float(b) for b in policy.bounds)
        else:
            constant("ACT_LOW", policy.low.flatten())
            constant("ACT_HIGH", policy.high.flatten())
            low, high = "ACT_LOW[i]", "ACT_HIGH[i]"
        return [
            f"    for (int i = 0; i < {width}; ++i) {{  /* clip to the action bounds */",
            f"        float v = {buffer}[i] > {high} ? {high} : {buffer}[i];",
            f"        act[i] = v < {low} ? {low} : v;",
            "    }",
        ]
    if policy.bounds == (-1.0, 1.0):
        return [f"    for (int i = 0; i < {width}; ++i) act[i] = {buffer}[i];"]
    if policy.bounds is not None:
        low, span = c_float(policy.bounds[0]), c_float(policy.bounds[1] - policy.bounds[0])
    else:
        constant("ACT_LOW", policy.low.flatten())
        constant("ACT_SPAN", (policy.high - policy.low).flatten())
        low, span = "ACT_LOW[i]", "ACT_SPAN[i]"
    unscaled = f"{low} + 0.5f * ({buffer}[i] + 1.0f) * {span}"
    return [f"    for (int i = 0; i < {width}; ++i) act[i] = {unscaled};  /* [-1, 1] to the bounds */"]


def _opening(name: str, description: str) -> str:
    about = f"\n * {description}" if description else ""
    return f"/* {name}: a deterministic policy written by prune-rl export (C99, libm only).{about}\n */"


def _header(obs_dim: int, act_dim: int, weight_bytes: int, description: str) -> str:
    return "\n".join(
        [
            _opening("policy.h", description),
            "#ifndef POLICY_H",
            "#define POLICY_H",
            "",
            f"#define POLICY_OBS_DIM {obs_dim}",
            f"#define POLICY_ACT_DIM {act_dim}",
            f"#define POLICY_WEIGHT_BYTES {weight_bytes}  /* its constant arrays: weights, biases, statistics, bounds */",
            "",
            "#ifdef __cplusplus",
            'extern "C" {',
            "#endif",
            "",
            "/* obs: one raw observation (flattened); act: the action (a discrete policy writes its index as act[0]). */",
            "void policy_act(const float obs[POLICY_OBS_DIM], float act[POLICY_ACT_DIM]);",
            "",
            "#ifdef __cplusplus",
            "}",
            "#endif",
            "",
            "#endif",
            "",
        ]
    )


def write_c(policy: DeployedPolicy, directory: str | Path, description: str = "") -> list[Path]:
    """
    Write ``policy.h``, ``policy.c`` and the benchmark program ``policy_bench.c`` into ``directory``.

    :param policy: The deterministic policy.
    :param directory: An existing folder.
    :param description: A line for the files' opening comment.
    :return: The files written.
    :raises ValueError: If the policy cannot be written as C (:func:`c_sources`).
    """
    header, source = c_sources(policy, description)
    directory = Path(directory)
    files = {HEADER: header, SOURCE: source, BENCH: BENCH_SOURCE}
    for name, text in files.items():
        (directory / name).write_text(text)
    return [directory / name for name in files]


def compile_c(directory: str | Path, binary: str | Path, cc: str = "cc") -> Path:
    """
    Compile the benchmark program with the policy: ``cc -O2 -std=c99 -o BINARY policy_bench.c policy.c -lm``.

    :param directory: A folder written by :func:`write_c`.
    :param binary: The program to write.
    :param cc: The C compiler.
    :return: ``binary``.
    :raises RuntimeError: If there is no such compiler or it fails (with its first error line).
    """
    directory = Path(directory)
    if shutil.which(cc) is None:
        raise RuntimeError(f"no C compiler {cc!r} on PATH")
    command = [cc, "-O2", "-std=c99", "-o", str(binary), str(directory / BENCH), str(directory / SOURCE), "-lm"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{cc} failed: {(done.stderr.strip().splitlines() or ['?'])[0]}")
    return Path(binary)


def c_actions(binary: str | Path, observations: np.ndarray) -> np.ndarray:
    """
    :param binary: A program from :func:`compile_c`.
    :param observations: ``(n, *obs_shape)`` raw observations.
    :return: ``(n, POLICY_ACT_DIM)`` float32 actions the C policy writes.
    """
    rows = np.ascontiguousarray(observations, dtype=np.float32).reshape(len(observations), -1)
    with tempfile.TemporaryDirectory() as tmp:
        rows.tofile(Path(tmp) / "obs.bin")
        subprocess.run([str(binary), "act", str(Path(tmp) / "obs.bin"), str(Path(tmp) / "act.bin")], check=True)
        return np.fromfile(Path(tmp) / "act.bin", dtype=np.float32).reshape(len(rows), -1)


BENCH_SOURCE = r"""/* policy_bench.c: runs policy_act on observations read from a file of float32 rows (native byte order).
 *
 *   cc -O2 -std=c99 -o policy_bench policy_bench.c policy.c -lm
 *   policy_bench act OBS_FILE ACT_FILE           writes the action of every row (float32, POLICY_ACT_DIM a row)
 *   policy_bench time OBS_FILE REPEATS SECONDS   times one call (cycling over the rows) and one pass over all
 *                                                rows; each repeat runs at least SECONDS and prints one line,
 *                                                "call <seconds per call>" or "batch <seconds per pass>",
 *                                                after "weight_bytes <POLICY_WEIGHT_BYTES>"
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *read_rows(const char *path, long *n_rows)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    *n_rows = size / (long)(sizeof(float) * POLICY_OBS_DIM);
    float *rows = malloc((size_t)(*n_rows > 0 ? *n_rows : 1) * sizeof(float) * POLICY_OBS_DIM);
    if (rows != NULL && fread(rows, sizeof(float) * POLICY_OBS_DIM, (size_t)*n_rows, f) != (size_t)*n_rows) {
        free(rows);
        rows = NULL;
    }
    fclose(f);
    return rows;
}

static volatile float sink;

/* Seconds per call of `n` calls (pass = 0: one row a call, cycling) or per pass over all rows (pass = 1). */
static double run(const float *rows, long n_rows, long n, int pass)
{
    float act[POLICY_ACT_DIM], acc = 0.0f;
    long r = 0;
    double start = now();
    for (long k = 0; k < n; ++k) {
        if (pass) {
            for (long i = 0; i < n_rows; ++i) {
                policy_act(rows + i * POLICY_OBS_DIM, act);
                acc += act[0];
            }
        } else {
            policy_act(rows + r * POLICY_OBS_DIM, act);
            acc += act[0];
            if (++r == n_rows) r = 0;
        }
    }
    double elapsed = now() - start;
    sink = acc;
    return elapsed / (double)n;
}

int main(int argc, char **argv)
{
    long n_rows = 0;
    float *rows = argc > 2 ? read_rows(argv[2], &n_rows) : NULL;
    if (rows == NULL || n_rows == 0) {
        fprintf(stderr, "usage: policy_bench act OBS_FILE ACT_FILE | time OBS_FILE REPEATS SECONDS\n");
        return 2;
    }
    if (argc == 4 && strcmp(argv[1], "act") == 0) {
        FILE *out = fopen(argv[3], "wb");
        if (out == NULL) return 1;
        float act[POLICY_ACT_DIM];
        for (long i = 0; i < n_rows; ++i) {
            policy_act(rows + i * POLICY_OBS_DIM, act);
            fwrite(act, sizeof(float), POLICY_ACT_DIM, out);
        }
        return fclose(out) == 0 ? 0 : 1;
    }
    if (argc == 5 && strcmp(argv[1], "time") == 0) {
        int repeats = atoi(argv[3]);
        double seconds = atof(argv[4]);
        printf("weight_bytes %d\n", POLICY_WEIGHT_BYTES);
        for (int pass = 0; pass < 2; ++pass) {
            long n = 1;
            run(rows, n_rows, n, pass); /* warm-up */
            while (n < (1L << 40) && run(rows, n_rows, n, pass) * (double)n < seconds) n *= 2;
            for (int k = 0; k < repeats; ++k) printf("%s %.9g\n", pass ? "batch" : "call", run(rows, n_rows, n, pass));
        }
        return 0;
    }
    fprintf(stderr, "usage: policy_bench act OBS_FILE ACT_FILE | time OBS_FILE REPEATS SECONDS\n");
    return 2;
}
"""
