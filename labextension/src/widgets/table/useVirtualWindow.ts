/**
 * The rows of a virtualized list that are on screen: the scroll position and height of the
 * scrolling element give the first and last row to render (plus an overscan).
 */
import { useCallback, useLayoutEffect, useRef, useState } from 'react';

/** Height of one row in pixels (rows must not wrap). */
export const ROW_HEIGHT = 26;
const OVERSCAN = 10;

/** The window of rows to render. */
export interface IVirtualWindow {
  scroller: React.RefObject<HTMLDivElement>;
  first: number;
  last: number;
  onScroll: (event: React.UIEvent<HTMLDivElement>) => void;
  /** Scroll back to the top (a new query). */
  reset: () => void;
}

/**
 * @param count - rows in the list
 * @param headerHeight - pixels above the first row inside the scroller (sticky headers)
 */
export function useVirtualWindow(count: number, headerHeight: number): IVirtualWindow {
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(400);

  useLayoutEffect(() => {
    const node = scroller.current;
    if (!node) {
      return;
    }
    const observer = new ResizeObserver(() => setHeight(node.clientHeight || 400));
    observer.observe(node);
    setHeight(node.clientHeight || 400);
    return () => observer.disconnect();
  }, []);

  const reset = useCallback(() => {
    if (scroller.current) {
      scroller.current.scrollTop = 0;
    }
    setScrollTop(0);
  }, []);

  const first = Math.max(0, Math.floor((scrollTop - headerHeight) / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(
    Math.max(count - 1, 0),
    Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN
  );
  return {
    scroller,
    first,
    last,
    onScroll: event => setScrollTop(event.currentTarget.scrollTop),
    reset
  };
}
