import { useEffect, useState, type RefObject } from "react";

/** How many cells of `cell` px fit across the element, kept up to date as it resizes. */
export function useColumns(element: RefObject<HTMLElement | null>, cell: number): number {
  const [columns, setColumns] = useState(6);
  useEffect(() => {
    const found = element.current;
    if (!found) return;
    const measure = () => setColumns(Math.max(1, Math.floor(found.clientWidth / cell)));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(found);
    return () => observer.disconnect();
  }, [element, cell]);
  return columns;
}
