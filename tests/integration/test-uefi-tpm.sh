#!/bin/bash
# A UEFI domain (OVMF, its variables in an NVRAM file; it still boots the
# test guest's kernel directly) with an emulated TPM (swtpm): a point holds
# the NVRAM file and the vTPM state folder, listed in its manifest with sizes
# and sha256; after both changed, a restore beside gives the new VM its own
# NVRAM file and vTPM state with the point's content, the original's
# untouched, and a restore in place brings both back bit for bit (issue 15
# items 1-2).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
. "$(dirname "$0")/lib.sh"

OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
if [ ! -f "$OVMF_CODE" ] || ! command -v swtpm >/dev/null; then
  echo "1..0 # SKIP needs ovmf and swtpm (vm-images/prepare-host.sh installs them)"
  trap - EXIT
  rm -rf "$WORK"
  exit 77
fi
virsh_() { virsh -q -c "$VMRP_URI" "$@"; }
uuid_of() { virsh_ domuuid "$1"; }
nvram_of() { virsh_ dumpxml --inactive "$1" | sed -n 's|.*<nvram[^>]*>\(.*\)</nvram>.*|\1|p'; }
permall() { echo "/var/lib/libvirt/swtpm/$1/tpm2/tpm2-00.permall"; }

# domains with NVRAM and vTPM state: undefined with both, before lib.sh's cleanup
test_cleanup() {
  local d
  for d in $(virsh_ list --all --name | grep "^$TEST_ID"); do
    virsh_ destroy "$d" >/dev/null 2>&1
    rm -rf "/var/lib/libvirt/swtpm/$(uuid_of "$d")" \
      "/var/lib/libvirt/swtpm/$(uuid_of "$d")".vmrp-old-* \
      "$(nvram_of "$d")".vmrp-old-*
    virsh_ undefine --nvram --checkpoints-metadata "$d" >/dev/null 2>&1
  done
}

vm="$TEST_ID-uefi"
"$TESTVM" create "$vm" >&2 || bail "cannot create VM $vm"
virsh_ dumpxml --inactive "$vm" |
  sed -e "s|</type>|</type><loader readonly='yes' type='pflash'>$OVMF_CODE</loader><nvram template='$OVMF_VARS'>/var/lib/libvirt/qemu/nvram/${vm}_VARS.fd</nvram>|" \
      -e "s|</devices>|<tpm model='tpm-tis'><backend type='emulator' version='2.0'/></tpm></devices>|" \
      >"$WORK/uefi.xml"
virsh_ define "$WORK/uefi.xml" >/dev/null && virsh_ start "$vm" >/dev/null
check "a UEFI domain with an emulated TPM starts"
nvram=$(nvram_of "$vm")
uuid=$(uuid_of "$vm")
[ -f "$nvram" ] && [ -f "$(permall "$uuid")" ]
check "it has an NVRAM file ($nvram) and vTPM state"

# the reference: NVRAM and vTPM state as they are at the point (the VM paused)
sleep 2
virsh_ suspend "$vm" >/dev/null
cp "$nvram" "$WORK/ref-nvram" && cp "$(permall "$uuid")" "$WORK/ref-permall"
vmrp rp-create "$vm" --consistency crash >"$WORK/create.out" 2>&1
check "rp-create of the UEFI/TPM domain"
comment "$WORK/create.out"
virsh_ resume "$vm" >/dev/null
point=$(vmrp --json rp-list "$vm" | jq -r '.[-1].id')
vmrp --json rp-info "$point" >"$WORK/point.json"
[ "$(jq -r '.files[] | select(.kind == "nvram") | .sha256' "$WORK/point.json")" = \
  "$(sha256sum <"$WORK/ref-nvram" | cut -d' ' -f1)" ] &&
  [ "$(jq -r '.files[] | select(.kind == "nvram") | .size' "$WORK/point.json")" = \
    "$(stat -c %s "$WORK/ref-nvram")" ] &&
  [ "$(jq -r '.files[] | select(.kind == "nvram") | .source' "$WORK/point.json")" = "$nvram" ]
check "the manifest lists the NVRAM file with its source, size and sha256"
[ "$(jq -r '.files[] | select(.path == "tpm/tpm2/tpm2-00.permall") | .sha256' \
      "$WORK/point.json")" = "$(sha256sum <"$WORK/ref-permall" | cut -d' ' -f1)" ]
check "and the vTPM state file with its sha256"
jq -c '.files[]' "$WORK/point.json" | comment

# both change while the VM is off
virsh_ destroy "$vm" >/dev/null
dd if=/dev/urandom of="$nvram" bs=4096 seek=100 count=4 conv=notrunc 2>/dev/null &&
  head -c 64 /dev/urandom >>"$(permall "$uuid")"
! cmp -s "$nvram" "$WORK/ref-nvram" && ! cmp -s "$(permall "$uuid")" "$WORK/ref-permall"
check "the NVRAM file and the vTPM state changed after the point"
cp "$nvram" "$WORK/changed-nvram" && cp "$(permall "$uuid")" "$WORK/changed-permall"

# beside: its own NVRAM file and vTPM state, with the point's content
mkdir -p "$WORK/restore"
new="$TEST_ID-beside"
vmrp --json rp-restore "$point" --name "$new" --disk-dir "$WORK/restore" \
  >"$WORK/beside.json" 2>"$WORK/beside.err"
check "restore beside"
comment "$WORK/beside.err"
new_nvram=$(nvram_of "$new")
new_uuid=$(uuid_of "$new")
[ "$new_nvram" = "/var/lib/libvirt/qemu/nvram/${new}_VARS.fd" ]
check "the new VM has its own NVRAM path ($new_nvram)"
cmp "$new_nvram" "$WORK/ref-nvram"
check "holding the point's variables bit for bit"
cmp "$(permall "$new_uuid")" "$WORK/ref-permall"
check "its vTPM state (in its own UUID's folder) is the point's"
[ "$(stat -c %U:%G "/var/lib/libvirt/swtpm/$new_uuid" "$(permall "$new_uuid")")" = \
  "$(stat -c %U:%G "/var/lib/libvirt/swtpm/$uuid" "$(permall "$uuid")")" ]
check "owned as libvirt owns the original's"
ls -ldR "/var/lib/libvirt/swtpm/$uuid" "/var/lib/libvirt/swtpm/$new_uuid" | comment
cmp "$nvram" "$WORK/changed-nvram" && cmp "$(permall "$uuid")" "$WORK/changed-permall"
check "the original's NVRAM and vTPM state are untouched"
virsh_ start "$new" >/dev/null && sleep 1 && [ "$(virsh_ domstate "$new")" = running ]
check "the new VM starts with them (swtpm takes the restored state)"
virsh_ destroy "$new" >/dev/null 2>&1

# an in-place restore killed after the define, or after the vTPM state was
# written: the next restore of the domain first puts the original's NVRAM file
# and vTPM state back, as it does its disks
if [ "${VMRP_FAULT_POINTS:-false}" = true ]; then
  VMRP_FAULT=restore-after-define:kill vmrp rp-restore "$point" --shutdown-timeout 0 \
    >/dev/null 2>&1
  [ $? = 137 ] && ls "$nvram".vmrp-old-* >/dev/null 2>&1
  check "an in-place restore killed after the define leaves the NVRAM file set aside"
  vmrp rp-restore "$point" --name "$TEST_ID-after" --disk-dir "$WORK/restore" \
    >/dev/null 2>"$WORK/after.err"
  check "the next restore of the domain runs"
  comment "$WORK/after.err"
  cmp "$nvram" "$WORK/changed-nvram" && [ -z "$(ls -d "$nvram".vmrp-old-* 2>/dev/null)" ]
  check "and first put the original's NVRAM file back"
  # killed once the vTPM state is written: the journal knew where the original's went
  tpmdir=/var/lib/libvirt/swtpm/$uuid
  VMRP_FAULT=restore-after-tpm:kill vmrp rp-restore "$point" --shutdown-timeout 0 \
    >/dev/null 2>&1
  [ $? = 137 ] && ls -d "$tpmdir".vmrp-old-* >/dev/null 2>&1 &&
    cmp -s "$(permall "$uuid")" "$WORK/ref-permall"
  check "an in-place restore killed after writing the vTPM state leaves the original's aside"
  mkdir -p "$WORK/restore2"
  vmrp rp-restore "$point" --name "$TEST_ID-after2" --disk-dir "$WORK/restore2" \
    >/dev/null 2>"$WORK/after2.err"
  check "the next restore of the domain runs"
  comment "$WORK/after2.err"
  cmp "$(permall "$uuid")" "$WORK/changed-permall" && cmp "$nvram" "$WORK/changed-nvram" &&
    [ -z "$(ls -d "$tpmdir".vmrp-old-* "$nvram".vmrp-old-* 2>/dev/null)" ]
  check "and first put the original's vTPM state and NVRAM file back"
fi

# in place: both come back to the point
vmrp rp-restore "$point" --shutdown-timeout 0 >"$WORK/inplace.out" 2>&1
check "restore in place"
comment "$WORK/inplace.out"
[ "$(nvram_of "$vm")" = "$nvram" ] && cmp "$nvram" "$WORK/ref-nvram"
check "the NVRAM file is the point's again, at its path"
cmp "$(permall "$uuid")" "$WORK/ref-permall"
check "the vTPM state is the point's again"
[ -z "$(ls -d "$nvram".vmrp-old-* "/var/lib/libvirt/swtpm/$uuid".vmrp-old-* 2>/dev/null)" ]
check "nothing set aside is left"
virsh_ start "$vm" >/dev/null && sleep 1 && [ "$(virsh_ domstate "$vm")" = running ]
check "the restored VM starts"

# instant beside: the same
inst="$TEST_ID-instant"
vmrp --json rp-restore "$point" --name "$inst" --instant --disk-dir "$WORK/restore" \
  >"$WORK/instant.json" 2>"$WORK/instant.err"
check "instant restore beside"
comment "$WORK/instant.err"
[ "$(nvram_of "$inst")" = "/var/lib/libvirt/qemu/nvram/${inst}_VARS.fd" ] &&
  cmp "$(permall "$(uuid_of "$inst")")" "$WORK/ref-permall" &&
  [ "$(virsh_ domstate "$inst")" = running ]
check "the instant VM runs with its own NVRAM file and the point's vTPM state"
virsh_ destroy "$inst" >/dev/null 2>&1

# the firmware files are part of what is verified and copied (issue 10)
vmrp --json rp-verify "$point" | jq -e 'length == 1 and .[0].verify_state == "OK"' >/dev/null
check "rp-verify checks the NVRAM and vTPM files: OK"
mkdir -p "$WORK/repo2"
vmrp rp-copy "$point" --to "$WORK/repo2" >"$WORK/copy.out" 2>&1
check "rp-copy copies a point with its nvram/ and tpm/ folders"
comment "$WORK/copy.out"
src_dir=$(ls -d "$VMRP_REPO"/collections/*/points/"$point")
dst_dir=$(ls -d "$WORK"/repo2/collections/*/points/"$point")
diff -r "$src_dir/nvram" "$dst_dir/nvram" && diff -r "$src_dir/tpm" "$dst_dir/tpm"
check "the copy holds the same firmware files"
printf 'x' | dd of="$dst_dir/nvram/VARS.fd" bs=1 seek=100 conv=notrunc 2>/dev/null
vmrp --repo "$WORK/repo2" rp-verify "$point" >"$WORK/v2.out" 2>&1
grep -q "nvram/VARS.fd does not match its SHA-256 digest" "$WORK/v2.out"
check "a changed NVRAM byte at the copy is found by rp-verify there"
comment "$WORK/v2.out"
