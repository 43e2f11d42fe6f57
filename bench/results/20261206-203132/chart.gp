set terminal pngcairo size 1500,1000 font "sans,10"
set output "chart.png"
set datafile missing "NA"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key outside right top vertical
set grid ytics
set multiplot layout 2,1
set size 1,0.62
set origin 0,0.38
set title "lamfs benchmark (scale 0.25, 3 rounds, median) — speed relative to s3fs, log scale"
set logscale y
set yrange [0.1:*]
set ytics format "%gx"
set xtics rotate by -20
plot for [i=2:5] "chart.dat" using i:xtic(1) title columnhead(i)
unset logscale y
set yrange [0:*]
set ytics format "%g"
set size 1,0.38
set origin 0,0
set title "daemon peak RSS (MiB; the issue's limit: 64 MiB)"
plot for [i=2:5] "rss.dat" using i:xtic(1) title columnhead(i), 64 with lines lw 2 dt 2 lc rgb "red" title "64 MiB"
unset multiplot
