# gnuplot -e "datafile='benchmarks.dat'; outfile='benchmarks.png'" chart.gp
# Horizontal bars per method: wall time, bytes written, peak RSS (data written by report.py).
set terminal pngcairo size 1100,1300 font "sans,10"
set output outfile
set datafile separator "\t"
set datafile missing "?"
set style fill solid 0.85 border -1
set grid xtics lc rgb "#dddddd"
set yrange [*:*] reverse
set offsets 0, 0, 0.6, 0.6
set ytics nomirror scale 0
set xtics nomirror
set border 3
set key off
set multiplot layout 3,1 title "partial-save / partial-load benchmark (scripts/bench.sh)" font "sans,13"
bar(c) = (valid(c) ? column(c) : NaN)
set title "Wall time (s, median) — lower is better"
set xrange [0:*]
plot datafile using (bar(2)/2):0:(bar(2)/2):(0.38):ytic(1) with boxxyerror lc rgb "#4e79a7", \
     "" using (bar(2)):0:(valid(2) ? sprintf(" %.2f", column(2)) : "") with labels left font "sans,9"
set title "Bytes written (MiB) — lower is better"
plot datafile using (bar(3)/2):0:(bar(3)/2):(0.38):ytic(1) with boxxyerror lc rgb "#59a14f", \
     "" using (bar(3)):0:(valid(3) ? sprintf(" %.1f", column(3)) : "") with labels left font "sans,9"
set title "Peak RSS of the largest client process (MiB) — target for the partial tools: 64 MiB"
set arrow 1 from 64, graph 0 to 64, graph 1 nohead dt 2 lc rgb "#e15759" lw 1.5
plot datafile using (bar(4)/2):0:(bar(4)/2):(0.38):ytic(1) with boxxyerror lc rgb "#f28e2b", \
     "" using (bar(4)):0:(valid(4) ? sprintf(" %.1f", column(4)) : "") with labels left font "sans,9"
unset multiplot
