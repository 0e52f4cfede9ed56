"""Tests for rnnkit/kernels/products.py, the graph pass that gives each compiled chunk few large products.

Each rewrite runs on a graph traced by make_fx (ATen ops with shape records, as Inductor hands them over) and
the rewritten graph is run on real numbers against the function it was traced from. The compiled path's own
equality tests (tests/test_compiled.py) run the pass inside Inductor for every cell.
"""

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from rnnkit.kernels import compiled, products

B, H, STEPS = 4, 32, 5  # the weight-gradient shapes of a small LSTM: (4·H, H) summed over STEPS steps of B rows


def count_products(graph_module) -> int:
    return sum(products.is_product(node) for node in graph_module.graph.nodes)


def rewritten(function, rewrite, *args):
    """make_fx's graph of function(*args), after `rewrite`: (graph module, what rewrite returned)."""
    graph_module = make_fx(function, tracing_mode="fake")(*args)
    result = rewrite(graph_module.graph)
    graph_module.graph.lint()
    graph_module.recompile()
    return graph_module, result


def weight_gradient(deltas, values):
    """∂L/∂U = Σ_t δ_tᵀ v_t written as autograd writes it: a chain of accumulating products."""
    total = torch.mm(deltas[0].permute(1, 0), values[0])  # (4H, H)
    for delta, value in zip(deltas[1:], values[1:]):
        total = torch.addmm(total, delta.permute(1, 0), value)  # (4H, H)
    return total


def test_a_weight_gradient_chain_becomes_one_product():
    deltas = [torch.randn(B, 4 * H) for _ in range(STEPS)]
    values = [torch.randn(B, H) for _ in range(STEPS)]
    graph_module, merged = rewritten(weight_gradient, products.merge_gradient_sums, deltas, values)
    assert merged == [STEPS]
    assert count_products(graph_module) == 1
    torch.testing.assert_close(graph_module(deltas, values), weight_gradient(deltas, values))


def test_a_chain_on_an_accumulator_keeps_it():
    """A chain that starts from a gradient already there (addmm(C, ...) at its bottom) adds C once; operands
    transposed some other way than permute are concatenated as they are."""

    def from_start(start, deltas, values):
        total = start
        for delta, value in zip(deltas, values):
            total = torch.addmm(total, delta.t(), value)  # (4H, H)
        return total

    args = (torch.randn(4 * H, H), [torch.randn(B, 4 * H) for _ in range(3)], [torch.randn(B, H) for _ in range(3)])
    graph_module, merged = rewritten(from_start, products.merge_gradient_sums, *args)
    assert merged == [3]
    assert count_products(graph_module) == 1
    torch.testing.assert_close(graph_module(*args), from_start(*args))


def test_a_step_input_and_recurrent_product_stay_apart():
    """W x_t + U h_{t-1} + b is a chain of two products too, but over H rows of K each: concatenating the weights
    would copy more than the one accumulation saves, so the cost rule leaves it."""

    def step_terms(x, h, W, U, b):
        return torch.addmm(torch.addmm(b, x, W.t()), h, U.t())  # (B, 4H)

    args = (torch.randn(B, H), torch.randn(B, H), torch.randn(4 * H, H), torch.randn(4 * H, H), torch.randn(4 * H))
    graph_module, merged = rewritten(step_terms, products.merge_gradient_sums, *args)
    assert merged == []
    assert count_products(graph_module) == 2


def sliced_weight_gradient(deltas_rz, deltas_n, values):
    """∂L/∂U for a GRU that slices U[:2H] and U[2H:] at each step, written as autograd writes it: each step's
    product scattered into zeros of U's shape, and every step's added up."""
    total = None
    for delta_rz, delta_n, value in zip(deltas_rz, deltas_n, values):
        for delta, start, end in ((delta_rz, 0, 2 * H), (delta_n, 2 * H, 3 * H)):
            term = torch.slice_scatter(
                torch.full((3 * H, H), 0.0), delta.permute(1, 0) @ value, 0, start, end
            )  # (3H, H)
            total = term if total is None else total + term
    return total


def test_gradients_of_a_parameters_slices_become_one_product_per_slice():
    deltas_rz = [torch.randn(B, 2 * H) for _ in range(STEPS)]
    deltas_n = [torch.randn(B, H) for _ in range(STEPS)]
    values = [torch.randn(B, H) for _ in range(STEPS)]
    graph_module, merged = rewritten(sliced_weight_gradient, products.merge_scattered_sums, deltas_rz, deltas_n, values)
    assert sorted(merged) == [STEPS, STEPS]
    assert count_products(graph_module) == 2
    scatters = [node for node in graph_module.graph.nodes if node.target == torch.ops.aten.slice_scatter.default]
    assert len(scatters) == 2
    torch.testing.assert_close(
        graph_module(deltas_rz, deltas_n, values), sliced_weight_gradient(deltas_rz, deltas_n, values)
    )


def unrolled_layer(xs, h, W, U, b):
    """A plain RNN over the steps, with the input product inside the step (a cell without project)."""
    outputs = []
    for x in xs:
        h = torch.tanh(torch.addmm(b, x, W.t()) + torch.mm(h, U.t()))  # (B, H)
        outputs.append(h)
    return torch.stack(outputs)  # (T, B, H)


def test_independent_products_with_one_weight_become_one_product():
    """The STEPS input products x_t Wᵀ + b become one; the recurrent products h_{t-1} Uᵀ, each waiting on the
    last, stay one per step."""
    args = (
        [torch.randn(B, H) for _ in range(STEPS)],
        torch.randn(B, H),
        torch.randn(H, H),
        torch.randn(H, H),
        torch.randn(H),
    )
    graph_module, batched = rewritten(unrolled_layer, products.batch_independent_products, *args)
    assert batched == [STEPS]
    assert count_products(graph_module) == 1 + STEPS
    torch.testing.assert_close(graph_module(*args), unrolled_layer(*args))


def test_a_linear_recurrence_is_not_batched():
    """h_t = U h_{t-1} + b: every product shares U and b, but each reads the one before: none is free."""

    def linear_rnn(h, U, b):
        for _ in range(STEPS):
            h = torch.addmm(b, h, U.t())  # (B, H)
        return h

    args = (torch.randn(B, H), torch.randn(H, H) / H, torch.randn(H))
    graph_module, batched = rewritten(linear_rnn, products.batch_independent_products, *args)
    assert batched == []
    assert count_products(graph_module) == STEPS
    torch.testing.assert_close(graph_module(*args), linear_rnn(*args))


def test_a_steps_sum_of_products_becomes_a_product_and_an_add():
    """Each step's p_t + h_{t-1} Uᵀ (p_t hoisted, the product's own shape) becomes mm + add, which the step's
    kernel fuses; a 1-D bias and a running sum of products (a weight gradient) stay addmm."""

    def layer(hoisted, h, U, b, deltas, values):
        for p in hoisted:
            h = torch.tanh(torch.addmm(p, h, U.t()))  # (B, H)
        return torch.addmm(b, h, U.t()), weight_gradient(deltas, values)  # (B, H), (H, H)

    deltas_and_values = ([torch.randn(B, H) for _ in range(3)], [torch.randn(B, H) for _ in range(3)])
    args = (
        [torch.randn(B, H) for _ in range(STEPS)],
        torch.randn(B, H),
        torch.randn(H, H),
        torch.randn(H),
        *deltas_and_values,
    )
    graph_module, rewritten_count = rewritten(layer, products.unfuse_step_sums, *args)
    assert rewritten_count == STEPS
    assert sum(node.target is products.ADDMM for node in graph_module.graph.nodes) == 1 + 2  # the bias's, the chain's
    for got, expected in zip(graph_module(*args), layer(*args)):
        torch.testing.assert_close(got, expected)


def test_the_pass_batches_then_merges_and_names_itself_for_the_cache():
    """ChunkProducts runs both rewrites; its uuid (Inductor's cache key) is a hash of products.py."""
    args = (
        [torch.randn(B, H) for _ in range(STEPS)],
        torch.randn(B, H),
        torch.randn(H, H),
        torch.randn(H, H),
        torch.randn(H),
    )
    graph_module = make_fx(unrolled_layer, tracing_mode="fake")(*args)
    before = count_products(graph_module)
    products.ChunkProducts()(graph_module.graph)
    graph_module.recompile()
    assert count_products(graph_module) == before - (STEPS - 1)
    torch.testing.assert_close(graph_module(*args), unrolled_layer(*args))
    assert products.ChunkProducts().uuid() == products.ChunkProducts().uuid() != b""


def test_inductor_options_carry_the_pass_and_the_mode(monkeypatch):
    """compile_for hands Inductor the pass (unless MERGE_PRODUCTS is off) and the mode's own settings."""
    assert isinstance(compiled.inductor_options(None)["post_grad_custom_post_pass"], products.ChunkProducts)
    assert compiled.inductor_options("reduce-overhead")["triton.cudagraphs"] is True
    monkeypatch.setattr(compiled, "MERGE_PRODUCTS", False)
    assert "post_grad_custom_post_pass" not in compiled.inductor_options(None)
