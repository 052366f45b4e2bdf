import { useEffect, useState, type RefObject } from "react";

/** The columns of cells at least `least` px wide that fit across the element, and the cell
 * width that fills it exactly (the grid takes the whole width it has, whatever the window),
 * kept up to date as it resizes. */
export function useColumns(
  element: RefObject<HTMLElement | null>,
  least: number,
): { columns: number; cell: number } {
  const [found, setFound] = useState({ columns: 6, cell: least });
  useEffect(() => {
    const box = element.current;
    if (!box) return;
    const measure = () => {
      const width = box.clientWidth;
      const columns = Math.max(1, Math.floor(width / least));
      const cell = Math.max(least, Math.floor(width / columns));
      setFound((was) => (was.columns === columns && was.cell === cell ? was : { columns, cell }));
    };
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(box);
    return () => observer.disconnect();
  }, [element, least]);
  return found;
}
