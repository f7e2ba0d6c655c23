/*
 * /init of the big-endian PowerPC guest: a static C program because the guest's Python has no
 * ctypes (no ppc64 libffi in Debian main) and so can mount nothing and power nothing off.
 *
 *  1. mount /proc, /sys, /dev (devtmpfs), /tmp and /run; bring up lo;
 *  2. run the guest agent (/opt/guest/agent.py: app-server + exec agent) and reap every orphan;
 *  3. when the main program ends, sync and power off (with -no-reboot QEMU then exits).
 *
 * The guest boots with no address: the image and its boot snapshot are the same for every lab.
 * ``/init net``, run by the agent once the lab has sent its settings, gives eth0 its addresses
 * and default routes, from its environment (it exits 1 if any step failed):
 *     SOCKETLAB_IP=ADDRESS/LEN  SOCKETLAB_GW4=GATEWAY  SOCKETLAB_IP6=ADDRESS/LEN  SOCKETLAB_GW6=GATEWAY
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* struct in6_ifreq from <linux/ipv6.h>, which clashes with glibc's <netinet/in.h> */
struct in6_ifreq {
    struct in6_addr ifr6_addr;
    unsigned int ifr6_prefixlen;
    int ifr6_ifindex;
};

static int failures;

static void say(const char *fmt, const char *arg, int err)
{
    failures++;
    fprintf(stderr, "init: ");
    fprintf(stderr, fmt, arg);
    if (err)
        fprintf(stderr, ": %s", strerror(err));
    fputc('\n', stderr);
}

static void mnt(const char *src, const char *dst, const char *type, const char *opts)
{
    mkdir(dst, 0755);
    if (mount(src, dst, type, MS_NOSUID, opts) != 0 && errno != EBUSY)
        say("cannot mount %s", dst, errno);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        say("cannot write %s", path, errno);
    if (fd >= 0)
        close(fd);
}

static void link_up(int fd, const char *name)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) == 0)
            return;
    }
    say("cannot bring up %s", name, errno);
}

/* "ADDRESS/LEN": ADDRESS into buf, and LEN (default_len when there is none) */
static int split_prefix(const char *text, char *buf, size_t size, int default_len)
{
    char *slash;

    snprintf(buf, size, "%s", text);
    if ((slash = strchr(buf, '/')) == NULL)
        return default_len;
    *slash = '\0';
    return atoi(slash + 1);
}

static int net_socket(int family)
{
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        say("no %s socket", family == AF_INET ? "IPv4" : "IPv6", errno);
    return fd;
}

static void set_in4(struct sockaddr *sa, in_addr_t addr)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)sa;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = addr;
}

static void setup_ipv4(const char *ifname)
{
    const char *addr = getenv("SOCKETLAB_IP"), *gw = getenv("SOCKETLAB_GW4");
    char buf[INET_ADDRSTRLEN + 8];
    struct in_addr a;
    int fd, plen;

    if (!addr || !*addr || (fd = net_socket(AF_INET)) < 0)
        return;
    plen = split_prefix(addr, buf, sizeof buf, 24);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    if (inet_pton(AF_INET, buf, &a) != 1 || plen < 1 || plen > 32) {
        say("bad SOCKETLAB_IP %s", addr, 0);
        close(fd);
        return;
    }
    set_in4(&ifr.ifr_addr, a.s_addr);
    if (ioctl(fd, SIOCSIFADDR, &ifr) != 0)
        say("cannot add IPv4 address %s", addr, errno);
    set_in4(&ifr.ifr_netmask, htonl(0xFFFFFFFFu << (32 - plen)));
    if (ioctl(fd, SIOCSIFNETMASK, &ifr) != 0)
        say("cannot set the IPv4 netmask of %s", addr, errno);
    link_up(fd, ifname);

    if (gw && *gw) {
        struct rtentry rt;
        memset(&rt, 0, sizeof rt);
        set_in4(&rt.rt_dst, INADDR_ANY);
        set_in4(&rt.rt_genmask, INADDR_ANY);
        if (inet_pton(AF_INET, gw, &a) != 1) {
            say("bad SOCKETLAB_GW4 %s", gw, 0);
        } else {
            set_in4(&rt.rt_gateway, a.s_addr);
            rt.rt_flags = RTF_UP | RTF_GATEWAY;
            rt.rt_dev = (char *)ifname;
            if (ioctl(fd, SIOCADDRT, &rt) != 0)
                say("cannot add IPv4 default route via %s", gw, errno);
        }
    }
    close(fd);
}

static void setup_ipv6(const char *ifname)
{
    const char *addr = getenv("SOCKETLAB_IP6"), *gw = getenv("SOCKETLAB_GW6");
    char buf[INET6_ADDRSTRLEN + 8], path[128];
    int fd, ifindex, plen;

    if (!addr || !*addr || (fd = net_socket(AF_INET6)) < 0)
        return;
    link_up(fd, ifname);
    ifindex = (int)if_nametoindex(ifname);
    /* no duplicate address detection: the address is usable at once, not "tentative" */
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/accept_dad", ifname);
    write_file(path, "0");
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/accept_ra", ifname);
    write_file(path, "0");

    plen = split_prefix(addr, buf, sizeof buf, 64);
    struct in6_ifreq ifr6;
    memset(&ifr6, 0, sizeof ifr6);
    ifr6.ifr6_ifindex = ifindex;
    ifr6.ifr6_prefixlen = (unsigned int)plen;
    if (inet_pton(AF_INET6, buf, &ifr6.ifr6_addr) != 1 || plen < 1 || plen > 128)
        say("bad SOCKETLAB_IP6 %s", addr, 0);
    else if (ioctl(fd, SIOCSIFADDR, &ifr6) != 0)
        say("cannot add IPv6 address %s", addr, errno);

    if (gw && *gw) {
        struct in6_rtmsg rt;
        memset(&rt, 0, sizeof rt);
        rt.rtmsg_flags = RTF_UP | RTF_GATEWAY;
        rt.rtmsg_metric = 1;
        rt.rtmsg_ifindex = ifindex;
        rt.rtmsg_dst_len = 0; /* ::/0 */
        if (inet_pton(AF_INET6, gw, &rt.rtmsg_gateway) != 1)
            say("bad SOCKETLAB_GW6 %s", gw, 0);
        else if (ioctl(fd, SIOCADDRT, &rt) != 0)
            say("cannot add IPv6 default route via %s", gw, errno);
    }
    close(fd);
}

int main(int argc, char **argv)
{
    pid_t child, pid;
    int status = 0, fd;
    const char *ifname = getenv("SOCKETLAB_IFACE") ? getenv("SOCKETLAB_IFACE") : "eth0";

    if (argc == 2 && strcmp(argv[1], "net") == 0) {
        setup_ipv4(ifname);
        setup_ipv6(ifname);
        return failures ? 1 : 0;
    }
    if (getpid() != 1) {
        say("run as the guest's init, or as: init net%s", "", 0);
        return 2;
    }

    mnt("proc", "/proc", "proc", NULL);
    mnt("sysfs", "/sys", "sysfs", NULL);
    mnt("devtmpfs", "/dev", "devtmpfs", "mode=0755");
    mnt("tmpfs", "/tmp", "tmpfs", "mode=1777");
    mnt("tmpfs", "/run", "tmpfs", "mode=0755");
    sethostname("ppc-guest", 9);

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        link_up(fd, "lo");
        close(fd);
    }

    setenv("PATH", "/usr/bin:/bin", 1);
    setenv("HOME", "/root", 1);
    setenv("PYTHONPATH", "/opt/socketlab", 0);
    setenv("PYTHONUNBUFFERED", "1", 0);
    setenv("PYTHONDONTWRITEBYTECODE", "1", 0);
    setenv("LANG", "C.UTF-8", 0);
    if (chdir("/root") != 0)
        say("cannot chdir %s", "/root", errno);

    child = fork();
    if (child == 0) {
        execl("/usr/bin/python3", "python3", "/opt/guest/agent.py", (char *)NULL);
        say("cannot run %s", "/usr/bin/python3", errno);
        _exit(127);
    }
    /* PID 1 reaps every orphan; it stops when the main program does */
    for (;;) {
        pid = wait(&status);
        if (pid == child || (pid < 0 && errno == ECHILD))
            break;
    }
    if (WIFEXITED(status))
        fprintf(stderr, "init: main program exited with status %d, powering off\n", WEXITSTATUS(status));
    else
        fprintf(stderr, "init: main program killed by signal %d, powering off\n", WTERMSIG(status));
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
