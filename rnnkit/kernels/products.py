"""Few large matrix products instead of many small ones: a graph pass over each compiled chunk of the loop.

A chunk of the compiled loop (rnnkit/kernels/compiled.py) unrolls n steps (n in compiled.CHUNKS). Written
step by step, its graphs hold three kinds of small products that need not be small, because nothing in them
waits on the recurrence:

  1. Weight gradients. A weight used at every step gets ∂L/∂U = Σ_t δ_tᵀ v_t, which autograd writes as a chain
     of accumulating products, each a reduction over only B rows, each reading and writing the whole (G·H, H)
     sum again. One product over the chunk's n·B rows gives the same sum (float32 rounding aside):

         addmm(addmm(mm(δ_1ᵀ, v_1), δ_2ᵀ, v_2), δ_3ᵀ, v_3)   ->   mm(cat(δ_1, δ_2, δ_3)ᵀ, cat(v_1, v_2, v_3))

     This is how torch.nn.LSTM's oneDNN and cuDNN kernels take their weight gradients, once for the sequence.

  2. Independent products with the same weight. A cell that writes forward alone (no project/step split)
     multiplies each x_t by its input weights inside the step, and the backward multiplies each step's δ_t by
     them again for ∂L/∂x_t. When no operand depends on another member's result, the steps' products become
     one, and each step reads its rows of it:

         mm(x_1, Wᵀ), mm(x_2, Wᵀ), mm(x_3, Wᵀ)   ->   mm(cat(x_1, x_2, x_3), Wᵀ)[rows of step t]

     This does for any cell what Cell.project does by hand.

  3. Gradients of a parameter's slices. A cell that slices a parameter inside its step (the GRU's U[:2H]
     and U[2H:]) gets, at every step, each slice's gradient written into zeros of the parameter's whole
     shape and added to the sum: two parameter-sized writes and adds per step. Per region, the steps'
     products become one (as in 1) and the zeros are written once:

         Σ_t slice_scatter(0, δ_tᵀ v_t, rows a:b)   ->   slice_scatter(0, mm(cat(δ_t)ᵀ, cat(v_t)), rows a:b)

The products that must stay small — U h_{t-1} forward and δ_t U backward, one step feeding the next — stay
one per step, with one change:

  4. A step's sum of a product and a tensor of its shape (x_t Wᵀ, hoisted, + h_{t-1} Uᵀ) is addmm, which
     copies the tensor into its result before multiplying onto it. As mm + add, the add joins the step's
     generated kernel, which reads the product anyway (a small gain, docs/speed-notes.md).

The pass runs after Inductor's own post-grad passes, on the forward and backward graphs alike
(torch.compile's `post_grad_custom_post_pass`), so it sees only ATen's mm/addmm. Its rewrites are exact up to the
order of float additions; tests compare the compiled path with the reference loop.

Measured (bench/speed.py, 2 CPU cores): see the README's Speed section.
"""

from __future__ import annotations

import torch
from torch import fx
from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files
from torch._inductor.pattern_matcher import stable_topological_sort

aten = torch.ops.aten
MM, ADDMM = aten.mm.default, aten.addmm.default


def is_product(node) -> bool:
    """An mm(A, B) or addmm(C, A, B) with the default alpha and beta, whose shapes the graph records."""
    if not (isinstance(node, fx.Node) and node.op == "call_function" and node.target in (MM, ADDMM)):
        return False
    return not node.kwargs and len(node.args) == (2 if node.target is MM else 3) and "val" in node.meta


def operands(node: fx.Node) -> tuple:
    """(accumulator or None, left, right) of mm / addmm."""
    return (None, *node.args) if node.target is MM else tuple(node.args)


def shape(node: fx.Node) -> torch.Size:
    return node.meta["val"].shape


def emit(graph: fx.Graph, target, *args) -> fx.Node:
    """A new node, with the shape record (meta["val"]) that Inductor's lowering reads."""
    node = graph.call_function(target, args)
    node.meta["val"] = target(*fx.node.map_arg(args, lambda n: n.meta["val"]))
    return node


def transposed(node: fx.Node) -> fx.Node | None:
    """X when node is permute(X, [1, 0]) (how autograd writes δᵀ), else None."""
    if node.op == "call_function" and node.target == aten.permute.default and list(node.args[1]) == [1, 0]:
        return node.args[0]
    return None


def chain_below(top: fx.Node) -> tuple[list[fx.Node], list[tuple[fx.Node, fx.Node]], fx.Node | None]:
    """The chain of accumulating products ending at `top`: (its nodes, top first; the (A_i, B_i) pairs; the
    accumulator at its bottom, or None). It goes down through accumulators that feed nothing else."""
    chain, pairs, node = [], [], top
    while True:
        chain.append(node)
        accumulator, left, right = operands(node)
        pairs.append((left, right))
        below = is_product(accumulator) and len(accumulator.users) == 1 and accumulator not in (left, right)
        if not (below and shape(accumulator) == shape(node)):  # addmm also takes an accumulator that broadcasts
            return chain, pairs, accumulator
        node = accumulator


def worth_merging(pairs: list[tuple[fx.Node, fx.Node]], result_shape: torch.Size) -> bool:
    """Does one product over the concatenated operands cost less than the accumulations it replaces?

    n products of (M, K_i) by (K_i, N), K = Σ K_i: the concatenation copies K·(M + N) numbers, the chain reads
    and writes its (M, N) sum n − 1 more times. True for weight gradients (K_i = B rows, M·N a weight), false
    for a step's W x_t + U h_{t-1} (M = B rows)."""
    M, N = result_shape
    K = sum(shape(left)[1] for left, _ in pairs)
    return len(pairs) >= 2 and K * (M + N) < (len(pairs) - 1) * M * N


def one_product(graph: fx.Graph, pairs: list[tuple[fx.Node, fx.Node]], accumulator: fx.Node | None) -> fx.Node:
    """accumulator + Σ_i A_i B_i as one product, mm(cat(A_i, dim=1), cat(B_i, dim=0)), at the graph's
    insertion point."""
    sources = [transposed(left) for left, _ in pairs]
    if all(source is not None for source in sources):  # cat the δ_t themselves (contiguous rows), then transpose
        lefts = emit(graph, aten.permute.default, emit(graph, aten.cat.default, sources, 0), [1, 0])  # (M, K)
    else:
        lefts = emit(graph, aten.cat.default, [left for left, _ in pairs], 1)  # (M, K)
    rights = emit(graph, aten.cat.default, [right for _, right in pairs], 0)  # (K, N)
    return (
        emit(graph, MM, lefts, rights) if accumulator is None else emit(graph, ADDMM, accumulator, lefts, rights)
    )  # (M, N)


def merge_gradient_sums(graph: fx.Graph) -> list[int]:
    """Rewrite 1: each chain of accumulating products Σ_i A_i B_i that is worth_merging becomes one product.
    Returns the merged chains' lengths."""
    merged, erased = [], set()
    for top in reversed(list(graph.nodes)):  # tops come after their chains: erased nodes are skipped below
        if top in erased or not is_product(top):
            continue
        if len(top.users) == 1 and all(is_product(user) and operands(user)[0] is top for user in top.users):
            continue  # an accumulator inside a chain: the chain's top takes it
        chain, pairs, accumulator = chain_below(top)
        if not worth_merging(pairs, shape(top)):
            continue
        with graph.inserting_before(top):
            total = one_product(graph, pairs, accumulator)  # (M, N)
        top.replace_all_uses_with(total)
        for node in chain:  # top first: each accumulator's only user is gone before it
            graph.erase_node(node)
        erased.update(chain)
        merged.append(len(pairs))
    return merged


def is_add(node) -> bool:
    return (
        isinstance(node, fx.Node) and node.op == "call_function" and node.target == aten.add.Tensor and not node.kwargs
    )


def scatter_region(node: fx.Node) -> tuple | None:
    """(shape, dtype, dim, start, end) when node is slice_scatter(zeros, source, dim, start, end), else None.

    This is how autograd returns the gradient of a slice of a parameter (a GRU's U[:2H]): the slice's
    gradient written into zeros of the parameter's shape, once per step, then added up."""
    if not (
        node.op == "call_function"
        and node.target == aten.slice_scatter.default
        and len(node.args) == 5
        and not node.kwargs
    ):
        return None
    zeros = node.args[0]
    if not (isinstance(zeros, fx.Node) and zeros.target == aten.full.default and zeros.args[1] == 0):
        return None
    return (tuple(shape(zeros)), zeros.meta["val"].dtype, *node.args[2:])


def merge_scattered_sums(graph: fx.Graph) -> list[int]:
    """Rewrite 3: a sum of per-step gradients of a parameter's slice, Σ_t slice_scatter(0, A_t B_t, region),
    becomes slice_scatter(0, one product, region) for each region: one product, and one write of the zeros,
    where each step wrote and added a whole parameter-sized tensor. Returns the number of terms merged each time."""
    merged, erased = [], set()
    for top in reversed(list(graph.nodes)):
        if top in erased or not is_add(top) or (len(top.users) == 1 and all(is_add(user) for user in top.users)):
            continue  # not an add, or inside a larger sum whose top takes it
        sums, terms, pending = [], [], [top]
        while pending:  # flatten the tree of adds; inner adds feed nothing else
            node = pending.pop()
            if (
                is_add(node)
                and (node is top or len(node.users) == 1)
                and all(isinstance(a, fx.Node) and shape(a) == shape(top) for a in node.args)
            ):
                sums.append(node)
                pending.extend(node.args)
            else:
                terms.append(node)
        if len(set(terms)) < len(terms):  # add(t, t): a term read twice would be merged twice
            continue
        regions: dict[tuple, list[fx.Node]] = {}
        chains = {}  # scattered term -> (the chain of products it scatters, their pairs)
        for term in terms:
            region = scatter_region(term)
            source = term.args[1] if region else None
            if region and len(term.users) == 1 and is_product(source) and len(source.users) == 1:
                chain, pairs, accumulator = chain_below(source)
                if accumulator is None:
                    chains[term] = (chain, pairs)
                    regions.setdefault(region, []).append(term)
        pairs_of = {
            region: [pair for term in scattered for pair in chains[term][1]] for region, scattered in regions.items()
        }
        # each region's gradient has the slice's shape, the shape of its terms' products
        regions = {
            region: scattered
            for region, scattered in regions.items()
            if worth_merging(pairs_of[region], shape(scattered[0].args[1]))
        }
        if not regions:
            continue
        with graph.inserting_before(top):
            kept = [term for term in terms if not any(term in scattered for scattered in regions.values())]
            for region, scattered in regions.items():
                zeros, (_, _, dim, start, end) = scattered[0].args[0], region
                gradient = one_product(graph, pairs_of[region], None)  # the slice's shape
                kept.append(
                    emit(graph, aten.slice_scatter.default, zeros, gradient, dim, start, end)
                )  # the parameter's shape
            total = kept[0]
            for term in kept[1:]:
                total = emit(graph, aten.add.Tensor, total, term)  # the parameter's shape
        top.replace_all_uses_with(total)
        for node in sums:  # the sums first, then the terms they read, then those terms' products
            graph.erase_node(node)
        for scattered in regions.values():
            for term in scattered:
                zeros, (chain, _) = term.args[0], chains[term]
                graph.erase_node(term)
                for node in chain:
                    graph.erase_node(node)
                if not zeros.users:  # each step's own zeros, where the graph did not share them
                    graph.erase_node(zeros)
                erased.update(chain)
            merged.append(len(scattered))
        erased.update(sums)
    return merged


VIEWS = (aten.t.default, aten.permute.default, aten.transpose.int, aten.view.default, aten.reshape.default)


def same_value(node):
    """A key equal for nodes that hold the same tensor: a view of a view is keyed by what it views, so each
    step's own Wᵀ (where the graph did not share one node) is the same weight."""
    if isinstance(node, fx.Node) and node.op == "call_function" and node.target in VIEWS:
        return (node.target, same_value(node.args[0]), repr(node.args[1:]))
    return node


def batch_independent_products(graph: fx.Graph) -> list[int]:
    """Rewrite 2: products that share their right operand (and a 1-D bias, if any) and whose left operands
    depend on none of them become one product over the rows of all, which each reads its slice of.
    Returns the number of products in each batch made."""
    groups: dict[tuple, list[fx.Node]] = {}
    for node in graph.nodes:
        if is_product(node):
            accumulator, left, right = operands(node)
            if accumulator is None or (isinstance(accumulator, fx.Node) and len(shape(accumulator)) == 1):
                groups.setdefault((node.target, same_value(accumulator), same_value(right), shape(left)[1]), []).append(
                    node
                )
    batched, erased = [], set()
    for members in groups.values():
        accumulator, _, right = operands(members[0])
        if len(members) < 2 or erased & {accumulator, right, *members}:
            continue
        bit = {member: 1 << index for index, member in enumerate(members)}
        depends_on = {}  # node -> bit mask of the members it depends on, in graph order
        for node in graph.nodes:
            mask = 0
            for source in node.all_input_nodes:
                mask |= depends_on[source] | bit.get(source, 0)
            depends_on[node] = mask
        if depends_on[right] or (accumulator is not None and depends_on[accumulator]):
            continue
        # U h_{t-1} is not free: h_{t-1} came from a member (or is one, in a linear RNN)
        free = [member for member in members if not (depends_on[operands(member)[1]] | bit.get(operands(member)[1], 0))]
        if len(free) < 2:
            continue
        with graph.inserting_before(free[0]):
            rows = emit(graph, aten.cat.default, [operands(member)[1] for member in free], 0)  # (n·B, K)
            product = (
                emit(graph, MM, rows, right) if accumulator is None else emit(graph, ADDMM, accumulator, rows, right)
            )  # (n·B, N)
            start = 0
            for member in free:
                end = start + shape(member)[0]
                member.replace_all_uses_with(emit(graph, aten.slice.Tensor, product, 0, start, end))  # (B, N)
                start = end
        for member in free:
            graph.erase_node(member)
        erased.update(free)
        batched.append(len(free))
        stable_topological_sort(graph)  # the batch sits before its first member, maybe before the last of its operands
    return batched


def unfuse_step_sums(graph: fx.Graph) -> int:
    """Rewrite 4: addmm(C, A, B) with a C of the product's own shape, read by no other product, becomes
    add(mm(A, B), C). addmm copies C into its result and multiplies onto it, one more pass over (M, N) per
    step; as an add, C is read by the generated kernel that reads the product anyway. These are each step's
    x_t Wᵀ + h_{t-1} Uᵀ once rewrite 2 (or project) hoisted x_t Wᵀ, and the backward's output gradient +
    δ_t U. Returns how many were rewritten."""
    rewritten = 0
    for node in list(graph.nodes):
        if not (is_product(node) and node.target is ADDMM):
            continue
        accumulator, left, right = operands(node)
        if not (isinstance(accumulator, fx.Node) and shape(accumulator) == shape(node)):
            continue  # a 1-D bias: addmm broadcasts it into the product's own pass
        if not node.users or any(user.op != "call_function" or is_product(user) for user in node.users):
            continue  # a running sum of products, or a graph output: nothing would fuse the add
        with graph.inserting_before(node):
            total = emit(graph, aten.add.Tensor, emit(graph, MM, left, right), accumulator)  # (M, N)
        node.replace_all_uses_with(total)
        graph.erase_node(node)
        rewritten += 1
    return rewritten


class ChunkProducts(CustomGraphPass):
    """The four rewrites, as Inductor's post_grad_custom_post_pass. uuid hashes this file, so Inductor's on-disk
    cache of compiled graphs knows when the pass changes."""

    def __call__(self, graph: fx.Graph) -> None:
        batch_independent_products(graph)
        merge_gradient_sums(graph)
        merge_scattered_sums(graph)
        unfuse_step_sums(graph)

    def uuid(self) -> bytes:
        return get_hash_for_files((__file__,))
