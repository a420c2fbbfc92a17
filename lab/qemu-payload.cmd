# The inner payload's command line for stage 2 (lab/qemu-hook.sh joins
# the tokens; lab/qemu_test.py derives what QMP must report from them).
# One token a line; "#" starts a comment; "expect=N" after a hypercall
# token is the return value the payload must print (not passed on).
# The inner VM has 64 MiB of RAM; the payload image is 0x100000-0x15e000.
seed=0x5eed0001
# shared memory holds a pattern
fill=0x200000+4M
verify=0x200000+4M
# A: 1 MiB to private; its fresh private pages read as zero (the shared
# copy is not what the guest sees any more), then hold a new pattern
private=0x200000+1M
zero=0x200000+1M
seed=0x5eed0002
fill=0x200000+1M
verify=0x200000+1M
# the shared neighbour kept its pattern
seed=0x5eed0001
verify=0x300000+3M
# B: 64 KiB to private, patterned
private=0x400000+64K
seed=0x5eed0003
fill=0x400000+64K
verify=0x400000+64K
# A back to shared: with the zero policy it reads zeros, then is usable
shared=0x200000+1M
zero=0x200000+1M
seed=0x5eed0004
fill=0x200000+1M
verify=0x200000+1M
# C: 2 MiB, 2 MiB aligned, patterned while shared, to private
fill=0x1000000+2M
verify=0x1000000+2M
private=0x1000000+2M
zero=0x1000000+2M
# invalid requests (KVM_HC_MAP_GPA_RANGE = 12: gpa, npages, attributes)
# unknown attribute bit 8: QEMU answers EINVAL
hypercall=12,0x500000,16,0x110 expect=22
# page-size field 3 (only 0-2 exist): QEMU answers EINVAL
hypercall=12,0x500000,16,0x13 expect=22
# beyond RAM (256 MiB on a 64 MiB VM): QEMU answers EINVAL
hypercall=12,0x10000000,16,0x10 expect=22
# straddling the end of RAM: QEMU answers EINVAL and converts nothing
hypercall=12,0x3ffe000,4,0x10 expect=22
# npages 0: KVM answers -EINVAL itself
hypercall=12,0x500000,0,0x10 expect=-22
# gpa not page aligned: KVM answers -EINVAL itself
hypercall=12,0x500800,1,0x10 expect=-22
# still running, nothing changed
seed=0x5eed0003
verify=0x400000+64K
seed=0x5eed0004
verify=0x200000+1M
# the host queries here (QMP), then sends a key
waitkey
# B and C back to shared
shared=0x400000+64K
zero=0x400000+64K
shared=0x1000000+2M
zero=0x1000000+2M
seed=0x5eed0001
verify=0x300000+1M
verify=0x410000+0x1f0000
# the host queries again, then quits QEMU
halt
