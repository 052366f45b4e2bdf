// Which pages of a long list a range of visible items needs (the grid fetches those, and the
// next one, before they scroll into view).

export const PAGE_SIZE = 200;

/** Page numbers holding items [first, last], plus `ahead` pages after them, within `total`. */
export function pagesFor(first: number, last: number, total: number, ahead = 1): number[] {
  if (total <= 0 || last < first) return [];
  const lastPage = Math.ceil(total / PAGE_SIZE) - 1;
  const from = Math.max(0, Math.floor(first / PAGE_SIZE));
  const to = Math.min(lastPage, Math.floor(last / PAGE_SIZE) + ahead);
  const out: number[] = [];
  for (let page = from; page <= to; page++) out.push(page);
  return out;
}
