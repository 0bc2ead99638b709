# gnuplot -e "datafile='benchmarks.dat'; outfile='benchmarks.png'" chart.gp
# Horizontal bars per method: wall time, bytes written, peak RSS (data written by report.py:
# label, wall s, MiB written, RSS MiB, kind 0 = Docker, 1 = partial tools, 2 = reference; "?" = none).
set terminal pngcairo size 1100,1400 font "sans,10"
set output outfile
set datafile separator "\t"
set datafile missing "?"
set style fill solid 0.9 border -1
set grid xtics lc rgb "#dddddd"
set yrange [*:*] reverse
set offsets 0, graph 0.07, 0.6, 0.6
set ytics nomirror scale 0
set xtics nomirror
set border 3
set key off
kindcolor(k) = (k == 1 ? 0x4e79a7 : (k == 2 ? 0x59a14f : 0xa0a0a0))
v(c) = (valid(c) ? column(c) : 0)
txt(c, f) = (valid(c) ? sprintf(f, column(c)) : " –")
set multiplot layout 3,1 title "partial-save / partial-load benchmark (scripts/bench.sh)\ngrey: plain Docker, blue: partial-save / partial-load, green: reference, –: not measured or failed" font "sans,12"
set title "Wall time (s, median) — lower is better"
set xrange [0:*]
plot datafile using (v(2)/2):0:(v(2)/2):(0.38):(kindcolor(column(5))):ytic(1) with boxxyerror lc rgb variable, \
     "" using (v(2)):0:(txt(2, " %.2f")) with labels left font "sans,9"
set title "Bytes written (MiB) — lower is better"
plot datafile using (v(3)/2):0:(v(3)/2):(0.38):(kindcolor(column(5))):ytic(1) with boxxyerror lc rgb variable, \
     "" using (v(3)):0:(txt(3, " %.1f")) with labels left font "sans,9"
set title "Peak RSS of the largest client process (MiB) — dashed: the 64 MiB target of the partial tools"
stats datafile using 4 nooutput
set xrange [0:(STATS_max > 64 ? STATS_max * 1.15 : 75)]
set arrow 1 from 64, graph 0 to 64, graph 1 nohead dt 2 lc rgb "#e15759" lw 1.5
plot datafile using (v(4)/2):0:(v(4)/2):(0.38):(kindcolor(column(5))):ytic(1) with boxxyerror lc rgb variable, \
     "" using (v(4)):0:(txt(4, " %.1f")) with labels left font "sans,9"
unset multiplot
