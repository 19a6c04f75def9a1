#!/bin/sh
# A cluster of N "hosts" on one machine, for multi-host Horovod by hand and in tests/cluster.py.
#
#   scripts/local_cluster.sh up DIR [N]         make hosts node1..nodeN (default 2), state and keys in DIR
#   scripts/local_cluster.sh exec DIR HOST CMD  run CMD on HOST (its network, hostname and /etc/hosts)
#   scripts/local_cluster.sh down DIR           stop every process of the hosts and remove them
#
# Each host is a network namespace with its own address on a private /24, joined to the others by a
# bridge that has no address in the machine's own namespace: traffic between the hosts never leaves
# them. Each has its own hostname (a UTS namespace, `unshare --uts`), an /etc/hosts naming every host
# (ip netns exec binds /etc/netns/NS/hosts over /etc/hosts), its own sshd on port 22 of its address,
# and an ssh client configuration (/etc/netns/NS/ssh) that logs in to the others with DIR's own key and
# keeps their host keys in DIR: the user's ~/.ssh is never read or written.
# Needs root, ip (iproute2), unshare (util-linux) and sshd (Debian's openssh-server).
# CLUSTER_SUBNET (default 10.213.17) sets the /24; hosts get .2, .3, ...
set -eu

usage() { echo "usage: $0 up DIR [N] | exec DIR HOST CMD... | down DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1 dir=$2
shift 2

case $action in
up)
    n=${1:-2}
    subnet=${CLUSTER_SUBNET:-10.213.17}
    [ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 1; }
    sshd=$(command -v sshd || echo /usr/sbin/sshd)
    [ -x "$sshd" ] || { echo "$0: no sshd; install openssh-server (make install)" >&2; exit 1; }
    mkdir -p "$dir" /run/sshd  # sshd's privilege separation directory
    dir=$(cd "$dir" && pwd)
    [ ! -e "$dir/prefix" ] || { echo "$0: $dir already holds a cluster; run down first" >&2; exit 1; }
    # Short unique names: interface names have at most 15 characters.
    prefix=gc$(printf '%05d' $(($$ % 100000)))
    echo "$prefix" > "$dir/prefix"
    echo "$n" > "$dir/size"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
    : > "$dir/known_hosts"
    hosts="127.0.0.1 localhost"
    i=1
    while [ $i -le "$n" ]; do
        hosts="$hosts
$subnet.$((i + 1)) node$i"
        i=$((i + 1))
    done
    ip link add "${prefix}br" type bridge
    ip link set "${prefix}br" up
    i=1
    while [ $i -le "$n" ]; do
        ns=${prefix}n$i
        ip netns add "$ns"
        ip link add "${prefix}v$i" type veth peer name eth0 netns "$ns"
        ip link set "${prefix}v$i" master "${prefix}br" up
        ip -n "$ns" addr add "$subnet.$((i + 1))/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        mkdir -p "/etc/netns/$ns/ssh"
        printf '%s\n' "$hosts" > "/etc/netns/$ns/hosts"
        cat > "/etc/netns/$ns/ssh/ssh_config" <<EOF
Host *
    IdentityFile $dir/id_ed25519
    UserKnownHostsFile $dir/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking no
    LogLevel ERROR
    ConnectTimeout 10
    ServerAliveInterval 5
    ServerAliveCountMax 3
EOF
        cat > "$dir/sshd_node$i.conf" <<EOF
ListenAddress $subnet.$((i + 1))
Port 22
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd_node$i.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
StrictModes no
AcceptEnv *
EOF
        ip netns exec "$ns" unshare --uts sh -c "hostname node$i && exec $sshd -f $dir/sshd_node$i.conf -E $dir/sshd_node$i.log"
        i=$((i + 1))
    done
    echo "$0: $n hosts up (node1..node$n on $subnet.0/24); state in $dir"
    ;;
exec)
    [ $# -ge 2 ] || usage
    host=$1
    shift
    prefix=$(cat "$dir/prefix")
    i=${host#node}
    exec ip netns exec "${prefix}n$i" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$host" "$@"
    ;;
down)
    [ -e "$dir/prefix" ] || exit 0
    prefix=$(cat "$dir/prefix") n=$(cat "$dir/size")
    i=1
    while [ $i -le "$n" ]; do
        ns=${prefix}n$i
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
        rm -rf "/etc/netns/$ns"
        i=$((i + 1))
    done
    ip link del "${prefix}br" 2>/dev/null || true
    rm -f "$dir/prefix"
    ;;
*) usage ;;
esac
