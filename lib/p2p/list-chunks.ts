// The chunks of a Uint8ArrayList without its iterator: iterating one runs a generator (a
// generator object and a result object per chunk), garbage on every small message.
/**
 * `bufs` is private in the list's types but a plain field in every version on the data path
 * (uint8arraylist 2.x and 3.x). Read it, never change it.
 */
export function chunksOf(list: { readonly byteLength: number }): readonly Uint8Array[] {
  return (list as unknown as { bufs: Uint8Array[] }).bufs;
}
