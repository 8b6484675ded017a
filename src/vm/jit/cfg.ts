/**
 * Graph facts the structured-control-flow translation needs: reverse postorder, dominators
 * (Cooper, Harvey & Kennedy), loop headers, merge nodes and reducibility. Nodes are 0..n-1 with
 * node 0 the entry; nothing here knows about eBPF.
 */

export interface ControlFlowFacts {
  /** Reverse-postorder number of each node; -1 if unreachable from the entry. */
  readonly rpo: Int32Array;
  /** Reachable nodes in reverse postorder. */
  readonly order: readonly number[];
  /** Immediate dominator; the entry is its own. -1 if unreachable. */
  readonly idom: Int32Array;
  /** Targets of back edges. */
  readonly loopHeader: Uint8Array;
  /** Nodes with two or more forward in-edges (counting parallel edges). */
  readonly merge: Uint8Array;
  /** False when some retreating edge goes to a node that does not dominate its source. */
  readonly reducible: boolean;
  /** Children of each node in the dominator tree, in reverse postorder. */
  readonly domChildren: readonly number[][];
}

export function analyzeControlFlow(successors: readonly (readonly number[])[]): ControlFlowFacts {
  const n = successors.length;
  const rpo = new Int32Array(n).fill(-1);
  const visited = new Uint8Array(n);
  const post: number[] = [];
  // Iterative DFS, so deep graphs cannot overflow the JS stack.
  const stack: [number, number][] = [[0, 0]];
  visited[0] = 1;
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [node, next] = top;
    if (next < successors[node].length) {
      top[1]++;
      const s = successors[node][next];
      if (!visited[s]) {
        visited[s] = 1;
        stack.push([s, 0]);
      }
    } else {
      post.push(node);
      stack.pop();
    }
  }
  const order = post.reverse();
  order.forEach((node, i) => {
    rpo[node] = i;
  });

  const preds: number[][] = Array.from({ length: n }, () => []);
  for (const u of order) for (const v of successors[u]) preds[v].push(u);

  const idom = new Int32Array(n).fill(-1);
  idom[0] = 0;
  const intersect = (a: number, b: number) => {
    let x = a;
    let y = b;
    while (x !== y) {
      while (rpo[x] > rpo[y]) x = idom[x];
      while (rpo[y] > rpo[x]) y = idom[y];
    }
    return x;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const v of order) {
      if (v === 0) continue;
      let d = -1;
      for (const p of preds[v]) if (idom[p] >= 0) d = d < 0 ? p : intersect(p, d);
      if (d !== idom[v]) {
        idom[v] = d;
        changed = true;
      }
    }
  }
  const dominates = (a: number, b: number) => {
    let x = b;
    for (;;) {
      if (x === a) return true;
      if (x === 0) return false;
      x = idom[x];
    }
  };

  const loopHeader = new Uint8Array(n);
  const forwardIn = new Int32Array(n);
  let reducible = true;
  for (const u of order) {
    for (const v of successors[u]) {
      if (rpo[v] <= rpo[u]) {
        loopHeader[v] = 1;
        if (!dominates(v, u)) reducible = false;
      } else forwardIn[v]++;
    }
  }
  const merge = new Uint8Array(n);
  for (let v = 0; v < n; v++) merge[v] = forwardIn[v] >= 2 ? 1 : 0;
  const domChildren: number[][] = Array.from({ length: n }, () => []);
  for (const v of order) if (v !== 0) domChildren[idom[v]].push(v);
  return { rpo, order, idom, loopHeader, merge, reducible, domChildren };
}
