"""The Triton kernels of rnnkit/kernels/triton_rnn.py (which explains them, launches them and differentiates
through them): one program computes a (BLOCK_B × BLOCK_H) tile of batch rows × hidden units of one step.

Imported only when the Triton path first runs, so that `import rnnkit` does not pay for importing Triton on
machines that never use it. Set TRITON_INTERPRET=1 before this import to run the kernels on the CPU.
"""

import triton
import triton.language as tl


@triton.jit
def tanh(x):
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def product(
    acc,
    a_ptr,
    a_stride,
    w_ptr,
    rows,
    cols,
    B,
    H,
    TRANSPOSED: tl.constexpr,
    A_TANH: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """acc[b, j] += Σ_k f(a[b, k]) W[j, k] (a Wᵀ, as F.linear), or with TRANSPOSED Σ_k a[b, k] W[k, j] (a W).
    a is (B, ·) with row stride a_stride, W an (H, H) row-major block, f = tanh when A_TANH."""
    for k0 in range(0, H, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        a = tl.load(
            a_ptr + rows[:, None] * a_stride + ks[None, :], mask=(rows[:, None] < B) & (ks[None, :] < H), other=0.0
        )
        if A_TANH:
            a = tanh(a)
        w_mask = (ks[:, None] < H) & (cols[None, :] < H)
        if TRANSPOSED:
            w = tl.load(w_ptr + ks[:, None] * H + cols[None, :], mask=w_mask, other=0.0)
        else:
            w = tl.load(w_ptr + cols[None, :] * H + ks[:, None], mask=w_mask, other=0.0)
        acc = tl.dot(a, w, acc, input_precision=PRECISION)
    return acc


@triton.jit
def tile_of(B, H, BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr):
    """This program's batch rows and hidden units, their mask, and their offsets in a (B, H) slab."""
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    return rows, cols, (rows[:, None] < B) & (cols[None, :] < H), rows[:, None] * H + cols[None, :]


@triton.jit
def is_alive(lengths_ptr, rows, s, B):
    return (s < tl.load(lengths_ptr + rows, mask=rows < B, other=0))[:, None]


@triton.jit
def row(ptr, cols, H):
    return tl.load(ptr + cols, mask=cols < H, other=0.0)[None, :]


# ---- stacked-gate cells: RNN, LSTM, reset-after GRU -------------------------------------------


@triton.jit
def stacked_gate(
    acc,
    h_prev,
    u_ptr,
    bu_ptr,
    gate,
    rows,
    cols,
    B,
    H,
    HAS_BIAS: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """acc + U_gate h_{t-1} + b_U,gate."""
    acc = product(acc, h_prev, H, u_ptr + gate * H * H, rows, cols, B, H, False, False, BLOCK_K, PRECISION)
    if HAS_BIAS:
        acc += row(bu_ptr + gate * H, cols, H)
    return acc


@triton.jit
def stacked_forward(
    p_ptr,
    hs_ptr,
    cs_ptr,
    u_ptr,
    bu_ptr,
    acts_ptr,
    y_ptr,
    lengths_ptr,
    s,
    B,
    T,
    H,
    CELL: tl.constexpr,
    ACT: tl.constexpr,
    G: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Step s of an RNN, LSTM or reset-after GRU for one tile; padded steps keep the state and output 0."""
    rows, cols, mask, tile = tile_of(B, H, BLOCK_B, BLOCK_H)
    p_tile = p_ptr + rows[:, None] * (T * G * H) + s * G * H + cols[None, :]  # p is (B, T, G·H)
    SLOTS: tl.constexpr = G + (CELL == 2)  # the GRU also keeps U_n h + b_Un
    act_tile = acts_ptr + s * B * SLOTS * H + rows[:, None] * (SLOTS * H) + cols[None, :]  # acts is (T, B, SLOTS·H)
    h_prev = hs_ptr + s * B * H  # hs[s] = h_{s-1}
    h = tl.load(h_prev + tile, mask=mask, other=0.0)
    if CELL == 0:  # h_t = g(W x_t + U h_{t-1} + b)
        a = stacked_gate(
            tl.load(p_tile, mask=mask, other=0.0),
            h_prev,
            u_ptr,
            bu_ptr,
            0,
            rows,
            cols,
            B,
            H,
            HAS_BIAS,
            BLOCK_K,
            PRECISION,
        )
        if ACT == 0:
            h_new = tanh(a)
        elif ACT == 1:
            h_new = tl.maximum(a, 0.0)
        elif ACT == 2:
            h_new = a
        else:  # sigmoid
            h_new = tl.sigmoid(a)
    elif CELL == 1:  # LSTM, gates i, f, g, o
        i = tl.sigmoid(
            stacked_gate(
                tl.load(p_tile, mask=mask, other=0.0),
                h_prev,
                u_ptr,
                bu_ptr,
                0,
                rows,
                cols,
                B,
                H,
                HAS_BIAS,
                BLOCK_K,
                PRECISION,
            )
        )
        f = tl.sigmoid(
            stacked_gate(
                tl.load(p_tile + H, mask=mask, other=0.0),
                h_prev,
                u_ptr,
                bu_ptr,
                1,
                rows,
                cols,
                B,
                H,
                HAS_BIAS,
                BLOCK_K,
                PRECISION,
            )
        )
        g = tanh(
            stacked_gate(
                tl.load(p_tile + 2 * H, mask=mask, other=0.0),
                h_prev,
                u_ptr,
                bu_ptr,
                2,
                rows,
                cols,
                B,
                H,
                HAS_BIAS,
                BLOCK_K,
                PRECISION,
            )
        )
        o = tl.sigmoid(
            stacked_gate(
                tl.load(p_tile + 3 * H, mask=mask, other=0.0),
                h_prev,
                u_ptr,
                bu_ptr,
                3,
                rows,
                cols,
                B,
                H,
                HAS_BIAS,
                BLOCK_K,
                PRECISION,
            )
        )
        c_prev = tl.load(cs_ptr + s * B * H + tile, mask=mask, other=0.0)
        c = f * c_prev + i * g
        h_new = o * tanh(c)
        if HAS_LENGTHS:
            c = tl.where(is_alive(lengths_ptr, rows, s, B), c, c_prev)
        tl.store(cs_ptr + (s + 1) * B * H + tile, c, mask=mask)
        tl.store(act_tile, i, mask=mask)
        tl.store(act_tile + H, f, mask=mask)
        tl.store(act_tile + 2 * H, g, mask=mask)
        tl.store(act_tile + 3 * H, o, mask=mask)
    else:  # reset-after GRU, gates r, z, n; n = tanh(p_n + r ⊙ (U_n h + b_Un))
        r = tl.sigmoid(
            stacked_gate(
                tl.load(p_tile, mask=mask, other=0.0),
                h_prev,
                u_ptr,
                bu_ptr,
                0,
                rows,
                cols,
                B,
                H,
                HAS_BIAS,
                BLOCK_K,
                PRECISION,
            )
        )
        z = tl.sigmoid(
            stacked_gate(
                tl.load(p_tile + H, mask=mask, other=0.0),
                h_prev,
                u_ptr,
                bu_ptr,
                1,
                rows,
                cols,
                B,
                H,
                HAS_BIAS,
                BLOCK_K,
                PRECISION,
            )
        )
        hn = stacked_gate(
            tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32),
            h_prev,
            u_ptr,
            bu_ptr,
            2,
            rows,
            cols,
            B,
            H,
            HAS_BIAS,
            BLOCK_K,
            PRECISION,
        )
        n = tanh(tl.load(p_tile + 2 * H, mask=mask, other=0.0) + r * hn)
        h_new = (1.0 - z) * h + z * n
        tl.store(act_tile, r, mask=mask)
        tl.store(act_tile + H, z, mask=mask)
        tl.store(act_tile + 2 * H, n, mask=mask)
        tl.store(act_tile + 3 * H, hn, mask=mask)
    y = h_new
    if HAS_LENGTHS:
        alive = is_alive(lengths_ptr, rows, s, B)
        h_new = tl.where(alive, h_new, h)
        y = tl.where(alive, y, 0.0)
    tl.store(hs_ptr + (s + 1) * B * H + tile, h_new, mask=mask)
    tl.store(y_ptr + rows[:, None] * (T * H) + s * H + cols[None, :], y, mask=mask)  # y is (B, T, H)


@triton.jit
def stacked_backward(
    dy_ptr,
    carry_ptr,
    carry_c_ptr,
    da_ptr,
    dpn_ptr,
    u_ptr,
    hs_ptr,
    cs_ptr,
    acts_ptr,
    lengths_ptr,
    s,
    B,
    T,
    H,
    CELL: tl.constexpr,
    ACT: tl.constexpr,
    G: tl.constexpr,
    HAS_NEXT: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Step s backward for one tile: ∂L/∂h_s, then every gate's pre-activation gradient δ_s (da, the
    product side; for the GRU's n also dpn, the input side). carry := what reaches h_{s-1} directly."""
    rows, cols, mask, tile = tile_of(B, H, BLOCK_B, BLOCK_H)
    dh = tl.load(carry_ptr + tile, mask=mask, other=0.0)  # step s+1's direct path (or ∂L/∂h_T at s = T-1)
    if HAS_NEXT:
        for gate in tl.static_range(G):  # + Σ_k δ_{s+1}[b, k] U[k, j], over every gate's rows
            dh = product(
                dh,
                da_ptr + (s + 1) * B * G * H + gate * H,
                G * H,
                u_ptr + gate * H * H,
                rows,
                cols,
                B,
                H,
                True,
                False,
                BLOCK_K,
                PRECISION,
            )
    dy = tl.load(dy_ptr + rows[:, None] * (T * H) + s * H + cols[None, :], mask=mask, other=0.0)
    dh_step = dh + dy
    alive = rows[:, None] >= 0
    if HAS_LENGTHS:  # a padded step passed the state through unchanged and output a constant 0
        alive = is_alive(lengths_ptr, rows, s, B)
    da_tile = da_ptr + s * B * G * H + rows[:, None] * (G * H) + cols[None, :]
    SLOTS: tl.constexpr = G + (CELL == 2)
    act_tile = acts_ptr + s * B * SLOTS * H + rows[:, None] * (SLOTS * H) + cols[None, :]
    direct = tl.where(alive, 0.0, dh)
    if CELL == 0:  # RNN (CELL is RNN, LSTM or GRU above: 0, 1, 2)
        h = tl.load(hs_ptr + (s + 1) * B * H + tile, mask=mask, other=0.0)
        if ACT == 0:
            da = dh_step * (1.0 - h * h)
        elif ACT == 1:
            da = tl.where(h > 0.0, dh_step, 0.0)
        elif ACT == 2:
            da = dh_step
        else:  # sigmoid: σ' = h (1 − h)
            da = dh_step * h * (1.0 - h)
        tl.store(da_tile, tl.where(alive, da, 0.0), mask=mask)
    elif CELL == 1:  # LSTM
        i = tl.load(act_tile, mask=mask, other=0.0)
        f = tl.load(act_tile + H, mask=mask, other=0.0)
        g = tl.load(act_tile + 2 * H, mask=mask, other=0.0)
        o = tl.load(act_tile + 3 * H, mask=mask, other=0.0)
        c = tl.load(cs_ptr + (s + 1) * B * H + tile, mask=mask, other=0.0)
        c_prev = tl.load(cs_ptr + s * B * H + tile, mask=mask, other=0.0)
        dc_next = tl.load(carry_c_ptr + tile, mask=mask, other=0.0)
        tc = tanh(c)
        dc = dc_next + dh_step * o * (1.0 - tc * tc)
        tl.store(da_tile, tl.where(alive, dc * g * i * (1.0 - i), 0.0), mask=mask)
        tl.store(da_tile + H, tl.where(alive, dc * c_prev * f * (1.0 - f), 0.0), mask=mask)
        tl.store(da_tile + 2 * H, tl.where(alive, dc * i * (1.0 - g * g), 0.0), mask=mask)
        tl.store(da_tile + 3 * H, tl.where(alive, dh_step * tc * o * (1.0 - o), 0.0), mask=mask)
        tl.store(carry_c_ptr + tile, tl.where(alive, dc * f, dc_next), mask=mask)
    else:  # reset-after GRU
        r = tl.load(act_tile, mask=mask, other=0.0)
        z = tl.load(act_tile + H, mask=mask, other=0.0)
        n = tl.load(act_tile + 2 * H, mask=mask, other=0.0)
        hn = tl.load(act_tile + 3 * H, mask=mask, other=0.0)
        h = tl.load(hs_ptr + s * B * H + tile, mask=mask, other=0.0)
        da_n = dh_step * z * (1.0 - n * n)
        tl.store(da_tile, tl.where(alive, da_n * hn * r * (1.0 - r), 0.0), mask=mask)
        tl.store(da_tile + H, tl.where(alive, dh_step * (n - h) * z * (1.0 - z), 0.0), mask=mask)
        tl.store(da_tile + 2 * H, tl.where(alive, da_n * r, 0.0), mask=mask)  # through r ⊙ (U_n h + b_Un)
        tl.store(dpn_ptr + s * B * H + tile, tl.where(alive, da_n, 0.0), mask=mask)
        direct = tl.where(alive, dh_step * (1.0 - z), dh)
    tl.store(carry_ptr + tile, direct, mask=mask)


# ---- reset-gate cells: reset-before GRU, MUT1-3 -----------------------------------------------


@triton.jit
def reset_gates_forward(
    p_ptr,
    hs_ptr,
    uz_ptr,
    ur_ptr,
    bz_ptr,
    br_ptr,
    z_ptr,
    r_ptr,
    rh_ptr,
    s,
    B,
    T,
    H,
    Z_AT: tl.constexpr,
    R_AT: tl.constexpr,
    HAS_UZ: tl.constexpr,
    Z_TANH: tl.constexpr,
    HAS_BZ: tl.constexpr,
    HAS_BR: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Step s, part 1: z, r and r ⊙ h_{s-1} for one tile."""
    rows, cols, mask, tile = tile_of(B, H, BLOCK_B, BLOCK_H)
    p_tile = p_ptr + rows[:, None] * (T * 3 * H) + s * 3 * H + cols[None, :]  # p is (B, T, 3H)
    h_prev = hs_ptr + s * B * H  # hs[s] = h_{s-1}
    a_r = product(
        tl.load(p_tile + R_AT * H, mask=mask, other=0.0),
        h_prev,
        H,
        ur_ptr,
        rows,
        cols,
        B,
        H,
        False,
        False,
        BLOCK_K,
        PRECISION,
    )
    a_z = tl.load(p_tile + Z_AT * H, mask=mask, other=0.0)
    if HAS_UZ:
        a_z = product(a_z, h_prev, H, uz_ptr, rows, cols, B, H, False, Z_TANH, BLOCK_K, PRECISION)
    if HAS_BR:
        a_r += row(br_ptr, cols, H)
    if HAS_BZ:
        a_z += row(bz_ptr, cols, H)
    r = tl.sigmoid(a_r)
    h = tl.load(h_prev + tile, mask=mask, other=0.0)
    out = s * B * H + tile
    tl.store(z_ptr + out, tl.sigmoid(a_z), mask=mask)
    tl.store(r_ptr + out, r, mask=mask)
    tl.store(rh_ptr + out, r * h, mask=mask)


@triton.jit
def reset_candidate_forward(
    p_ptr,
    hs_ptr,
    un_ptr,
    bn_ptr,
    z_ptr,
    rh_ptr,
    n_ptr,
    y_ptr,
    lengths_ptr,
    s,
    B,
    T,
    H,
    N_AT: tl.constexpr,
    HAS_BN: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Step s, part 2: n and h_s for one tile; padded steps keep h_{s-1} and output 0."""
    rows, cols, mask, tile = tile_of(B, H, BLOCK_B, BLOCK_H)
    p_tile = p_ptr + rows[:, None] * (T * 3 * H) + s * 3 * H + cols[None, :]
    a_n = product(
        tl.load(p_tile + N_AT * H, mask=mask, other=0.0),
        rh_ptr + s * B * H,
        H,
        un_ptr,
        rows,
        cols,
        B,
        H,
        False,
        False,
        BLOCK_K,
        PRECISION,
    )
    if HAS_BN:
        a_n += row(bn_ptr, cols, H)
    n = tanh(a_n)
    z = tl.load(z_ptr + s * B * H + tile, mask=mask, other=0.0)
    h = tl.load(hs_ptr + s * B * H + tile, mask=mask, other=0.0)
    h_new = (1.0 - z) * h + z * n
    y = h_new
    if HAS_LENGTHS:
        alive = is_alive(lengths_ptr, rows, s, B)
        h_new = tl.where(alive, h_new, h)
        y = tl.where(alive, y, 0.0)
    tl.store(n_ptr + s * B * H + tile, n, mask=mask)
    tl.store(hs_ptr + (s + 1) * B * H + tile, h_new, mask=mask)
    tl.store(y_ptr + rows[:, None] * (T * H) + s * H + cols[None, :], y, mask=mask)  # y is (B, T, H)


@triton.jit
def reset_candidate_backward(
    dy_ptr,
    carry_ptr,
    dar_ptr,
    daz_ptr,
    ur_ptr,
    uz_ptr,
    hs_ptr,
    z_ptr,
    n_ptr,
    dan_ptr,
    lengths_ptr,
    s,
    B,
    T,
    H,
    HAS_NEXT: tl.constexpr,
    HAS_UZ: tl.constexpr,
    Z_TANH: tl.constexpr,
    HAS_LENGTHS: tl.constexpr,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Step s backward, part A: ∂L/∂h_s (from the output and from step s+1's gate gradients), then the
    gradients of n's and z's pre-activations; carry := what reaches h_{s-1} directly through (1 − z)."""
    rows, cols, mask, tile = tile_of(B, H, BLOCK_B, BLOCK_H)
    dh = tl.load(carry_ptr + tile, mask=mask, other=0.0)  # step s+1's direct paths (or ∂L/∂h_T at s = T-1)
    if HAS_NEXT:
        dh = product(dh, dar_ptr + (s + 1) * B * H, H, ur_ptr, rows, cols, B, H, True, False, BLOCK_K, PRECISION)
        if HAS_UZ:
            dh_z = product(
                tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32),
                daz_ptr + (s + 1) * B * H,
                H,
                uz_ptr,
                rows,
                cols,
                B,
                H,
                True,
                False,
                BLOCK_K,
                PRECISION,
            )
            if Z_TANH:
                t = tanh(tl.load(hs_ptr + (s + 1) * B * H + tile, mask=mask, other=0.0))
                dh_z = dh_z * (1.0 - t * t)
            dh += dh_z
    dy = tl.load(dy_ptr + rows[:, None] * (T * H) + s * H + cols[None, :], mask=mask, other=0.0)
    z = tl.load(z_ptr + s * B * H + tile, mask=mask, other=0.0)
    n = tl.load(n_ptr + s * B * H + tile, mask=mask, other=0.0)
    h = tl.load(hs_ptr + s * B * H + tile, mask=mask, other=0.0)
    dh_step = dh + dy
    da_n = dh_step * z * (1.0 - n * n)
    da_z = dh_step * (n - h) * z * (1.0 - z)
    direct = dh_step * (1.0 - z)
    if HAS_LENGTHS:  # a padded step passed h_{s-1} through unchanged and output a constant 0
        alive = is_alive(lengths_ptr, rows, s, B)
        da_n = tl.where(alive, da_n, 0.0)
        da_z = tl.where(alive, da_z, 0.0)
        direct = tl.where(alive, direct, dh)
    tl.store(dan_ptr + s * B * H + tile, da_n, mask=mask)
    tl.store(daz_ptr + s * B * H + tile, da_z, mask=mask)
    tl.store(carry_ptr + tile, direct, mask=mask)


@triton.jit
def reset_backward(
    dan_ptr,
    un_ptr,
    hs_ptr,
    r_ptr,
    carry_ptr,
    dar_ptr,
    s,
    B,
    H,
    BLOCK_B: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_K: tl.constexpr,
    PRECISION: tl.constexpr,
):
    """Step s backward, part B: through U_n (r ⊙ h_{s-1}) to r's pre-activation and to h_{s-1}."""
    rows, cols, mask, tile = tile_of(B, H, BLOCK_B, BLOCK_H)
    d_rh = product(
        tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32),
        dan_ptr + s * B * H,
        H,
        un_ptr,
        rows,
        cols,
        B,
        H,
        True,
        False,
        BLOCK_K,
        PRECISION,
    )
    h = tl.load(hs_ptr + s * B * H + tile, mask=mask, other=0.0)
    r = tl.load(r_ptr + s * B * H + tile, mask=mask, other=0.0)
    tl.store(dar_ptr + s * B * H + tile, d_rh * h * r * (1.0 - r), mask=mask)
    carry = tl.load(carry_ptr + tile, mask=mask, other=0.0)
    tl.store(carry_ptr + tile, carry + d_rh * r, mask=mask)
