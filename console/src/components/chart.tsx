import { useEffect, useRef } from "react";
import uPlot from "uplot";

/**
 * One time series in uPlot (canvas, ~50 KB, fast with 100k points). `xs` are Unix seconds. The
 * plot is created once and fed new data in place, so a live tail does not flicker. `min`/`max` are
 * the metric's plausible range: the y axis spans at least that, and more if the data goes outside.
 */
export function Chart({ title, xs, ys, unit, min, max }: { title: string; xs: number[]; ys: number[]; unit?: string; min?: number; max?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>(undefined);
  // Data changes go through setData below; only a new title, unit or range rebuilds the plot.
  // biome-ignore lint/correctness/useExhaustiveDependencies: xs and ys are the initial data only
  useEffect(() => {
    const el = box.current!;
    const opts: uPlot.Options = {
      width: Math.max(300, el.clientWidth),
      height: 220,
      title,
      scales: {
        x: { time: true },
        ...(min !== undefined || max !== undefined
          ? { y: { range: (_u: uPlot, lo: number, hi: number): uPlot.Range.MinMax => [Math.min(lo, min ?? lo), Math.max(hi, max ?? hi)] } }
          : {}),
      },
      series: [
        {},
        { label: unit ? `${title} (${unit})` : title, stroke: "#2563eb", width: 1.5, fill: "rgba(37,99,235,0.08)", points: { show: xs.length < 60 } },
      ],
      axes: [{}, { size: 60 }],
    };
    plot.current = new uPlot(opts, [xs, ys], el);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(300, el.clientWidth), height: 220 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, [title, unit, min, max]);
  useEffect(() => {
    plot.current?.setData([xs, ys]);
  }, [xs, ys]);
  return <div className="chart" ref={box} data-metric={title} data-points={xs.length} />;
}
