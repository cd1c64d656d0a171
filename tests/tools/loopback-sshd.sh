# loopback-sshd.sh: a throwaway sshd on a free loopback port (sourced by
# tests/integration/test-copy-ssh.sh and tests/bench/bench-copy.sh)
#
# loopback_sshd DIR: makes DIR (0700) with a host key, a user key that may log in as
# root, and an sshd config (keys only, its own authorized_keys, internal-sftp); starts
# `sshd -D` in the background and waits until its port answers. Sets SSHD_PORT and
# SSHD_PID, writes DIR/known_hosts, exports VMRP_SSH_KNOWN_HOSTS and VMRP_SSH_IDENTITY
# (DIR/user_key) and unsets SSH_AUTH_SOCK: nothing in ~/.ssh or /etc/ssh is used.
# Returns non-zero when a key or folder cannot be made.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

loopback_sshd() {
    local dir=$1 i
    mkdir -m 700 "$dir" && mkdir -p /run/sshd &&
        ssh-keygen -q -t ed25519 -N '' -C vmrp-loopback-host -f "$dir/host_key" &&
        ssh-keygen -q -t ed25519 -N '' -C vmrp-loopback-user -f "$dir/user_key" &&
        cp "$dir/user_key.pub" "$dir/authorized_keys" || return 1
    while SSHD_PORT=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null
    do :; done
    cat >"$dir/config" <<EOC
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile none
AuthorizedKeysFile $dir/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
EOC
    /usr/sbin/sshd -D -f "$dir/config" -E "$dir/log" &
    SSHD_PID=$!
    for i in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null && break
        sleep 0.1
    done
    echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
    export VMRP_SSH_KNOWN_HOSTS=$dir/known_hosts VMRP_SSH_IDENTITY=$dir/user_key
    unset SSH_AUTH_SOCK
}
