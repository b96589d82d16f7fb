package bench

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotSoak draws one panel per series (see soakSeries) against the minutes
// of the run, with the plateau window shaded, into a PNG.
func plotSoak(path string, samples []soakSample, cfg SoakConfig) error {
	const cols = 2
	rows := (len(soakSeries) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for r := range plots {
		plots[r] = make([]*plot.Plot, cols)
	}
	for i, se := range soakSeries {
		p := plot.New()
		p.Title.Text = se.name
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = se.unit
		p.Y.Min = 0
		pts := make(plotter.XYs, len(samples))
		top := 0.0
		for k, s := range samples {
			pts[k].X, pts[k].Y = s.At.Minutes(), se.get(s)
			top = max(top, pts[k].Y)
		}
		p.Y.Max = max(top*1.15, 1)
		// The plateau window: the samples the check reads.
		settle := cfg.Settle.Minutes()
		shade, err := plotter.NewPolygon(plotter.XYs{{X: settle, Y: 0}, {X: cfg.For.Minutes(), Y: 0}, {X: cfg.For.Minutes(), Y: p.Y.Max}, {X: settle, Y: p.Y.Max}})
		if err != nil {
			return err
		}
		shade.Color = color.RGBA{R: 220, G: 235, B: 220, A: 255}
		shade.LineStyle.Width = 0
		line, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		line.Width = vg.Points(1.5)
		line.Color = color.RGBA{R: 30, G: 80, B: 160, A: 255}
		p.Add(shade, plotter.NewGrid(), line)
		plots[i/cols][i%cols] = p
	}
	img := vgimg.New(vg.Points(900), vg.Points(280*float64(rows)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	canvases := plot.Align(plots, tiles, dc)
	for r := range plots {
		for c := range plots[r] {
			if plots[r][c] != nil {
				plots[r][c].Draw(canvases[r][c])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close() //nolint:errcheck // the write error is the one to report
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return f.Close()
}
