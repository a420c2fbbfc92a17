# The lab's conversion benchmark (lab/bench.py): the payload's command
# line, one token a line.  Each "waitkey" (and each storm's own stop after
# its timed conversions) lets lab/bench.py read QEMU's counters; a storm
# turns what it left private back to shared before the next stop.  The
# inner VM has 64 MiB of RAM; the payload image is 0x100000-0x15e000.
seed=0x5eedb001
waitkey
# a conversion that changes nothing: the exit to QEMU and back
nop=20000,0x200000
waitkey
# random 4 KiB conversions over 32 MiB (the boot shape)
storm=0x200000,32M,20000,1
waitkey
# random 2 MiB conversions over 32 MiB
storm=0x200000,32M,2000,512
waitkey
# the whole of the RAM above the payload, both directions
storm=0x200000,60M,20,15360
waitkey
halt
